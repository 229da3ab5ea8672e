"""The stack registry: a driver for every ``stack:`` name, and a clear refusal before a run starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilnet.errors import StackError
from hilnet.ledger import OBSERVES_ALL, SIGHTING_EVENTS, Observes
from hilnet.scenario.model import STACKS
from hilnet.stacks import registry
from hilnet.stacks.hilnet_agent import HilnetAgent

ION_SCENARIO = """hilnet: 1
name: needs-ion
clock: {scale: 10, duration: 1m}
nodes:
  a: {eid: "ipn:1.0", stack: ion}
  b: {eid: "ipn:2.0", stack: ion}
links:
  a-b: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 10Mbit/s, delay: 5ms}
traffic:
  - {name: t, from: a, to: b, start: 1s, count: 1, size: 1KiB}
"""


def test_every_stack_a_scenario_may_name_has_a_driver_module() -> None:
    assert sorted(registry.MODULES) == sorted(STACKS)


def test_hilnet_is_its_own_agent_and_observes_everything() -> None:
    driver = registry.driver_for("hilnet")
    assert driver is HilnetAgent
    assert HilnetAgent.stack == "hilnet"
    assert HilnetAgent.observes == OBSERVES_ALL
    assert OBSERVES_ALL.events == SIGHTING_EVENTS and OBSERVES_ALL.stored and OBSERVES_ALL.crash


def test_a_stack_without_a_driver_module_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODULES, "ion", "hilnet.stacks.no_such_driver")
    with pytest.raises(StackError, match=r"stack 'ion': this hilnet has no driver for it"):
        registry.driver_for("ion")
    with pytest.raises(StackError, match=r"no driver for stack 'dtn7'"):
        registry.driver_for("dtn7")


def test_observability_survives_the_run_record() -> None:
    seen = Observes(frozenset({"delivered", "received"}), stored=False, crash=True, note="no per-hop acks")
    assert Observes.from_record(seen.as_record()) == seen


def _no_ion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "no-ion"
    empty.mkdir()
    monkeypatch.setenv("HILNET_ION_PREFIX", str(empty))


def test_a_missing_ion_names_the_nodes_and_the_build_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_ion(monkeypatch, tmp_path)
    registry.require_stacks([("relay", "hilnet")])  # hilnet needs nothing installed
    with pytest.raises(StackError) as err:
        registry.require_stacks([("relay", "hilnet"), ("iss", "ion"), ("ground", "ion")])
    text = str(err.value)
    assert text.startswith("nodes iss, ground run stack ion, but ION is not installed")
    assert "scripts/build-ion" in text


def test_run_refuses_ion_that_is_not_installed_before_anything_starts(tmp_path: Path) -> None:
    sc = tmp_path / "needs-ion.yaml"
    sc.write_text(ION_SCENARIO)
    empty = tmp_path / "no-ion"
    empty.mkdir()
    out = tmp_path / "run"
    env = dict(os.environ, HILNET_ION_PREFIX=str(empty))
    p = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(sc), "--backend", "loopback", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert not out.exists()  # no run folder: nothing was built or started
    assert "nodes a, b run stack ion, but ION is not installed" in p.stderr
    assert "scripts/build-ion" in p.stderr and "Traceback" not in p.stderr
    # validate and plan take it: only running needs ION here
    v = subprocess.run([sys.executable, "-m", "hilnet", "validate", str(sc)], capture_output=True, text=True, env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.strip().endswith("; stacks: ion on a, b")
    assert "note: ION is not installed" in v.stderr and "hilnet run refuses it on this machine" in v.stderr


def test_run_refuses_an_unknown_stack_at_its_place(tmp_path: Path) -> None:
    sc = tmp_path / "typo.yaml"
    sc.write_text(ION_SCENARIO.replace("stack: ion}\n  b", "stack: ionn}\n  b"))
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(sc), "--backend", "loopback", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and not out.exists()
    assert f"{sc}:5:30: node 'a' stack is 'ionn'; did you mean 'ion'?; expected hilnet or ion" in p.stderr


def test_a_crash_on_a_stack_that_cannot_restart_on_its_state_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from hilnet.scenario.load import load_scenario_text

    class Fragile:
        stack = "hilnet"
        observes = Observes(frozenset({"delivered"}), stored=False, crash=False)
        backends = frozenset({"loopback"})

    sc = load_scenario_text(
        ION_SCENARIO.replace("stack: ion", "stack: hilnet").replace("cl: tcpclv3, ", "")
        + "faults:\n  - {at: 5s, crash: b, restart-after: 5s}\n",
        "fragile.yaml",
    )
    registry.refuse_what_stacks_cannot_do(sc, "loopback")  # hilnet's agent restarts on its store
    monkeypatch.setattr(registry, "driver_for", lambda stack: Fragile)
    with pytest.raises(StackError, match=r"^fragile.yaml:12:5: a crash fault on node b, whose stack hilnet cannot"):
        registry.refuse_what_stacks_cannot_do(sc, "loopback")
    with pytest.raises(StackError, match=r"^node a runs stack hilnet, which hilnet runs on the loopback backend, not"):
        registry.refuse_what_stacks_cannot_do(sc, "netns")
