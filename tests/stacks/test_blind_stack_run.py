"""A real run with a node whose stack observes less: the checks say "not observable", not "lost".

Three hilnet agents a - b - c; the b-c link is cut past the end of the run, so
both bundles end stored at b. Played by hilnet's agent, b says so (fate
"stored"); played by a stack that reports only arrivals and deliveries, b
cannot, and the verdict says "not observable for this stack" where the same
log would otherwise read as two lost bundles.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hilnet.controller.run import RunOptions, run
from hilnet.report.console import LiveView
from hilnet.scenario.load import load_scenario_text
from hilnet.stacks import registry

SCENARIO = """hilnet: 1
name: blind
clock: {scale: 10, duration: 30s}
nodes:
  a: {eid: "ipn:1.0"}
  b: {eid: "ipn:2.0"}
  c: {eid: "ipn:3.0"}
links:
  a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms}
  b-c: {ends: [b, c], medium: ethernet, rate: 10Mbit/s, delay: 5ms}
traffic:
  - {name: t, from: a, to: c, start: 2s, every: 2s, count: 2, size: 1KiB}
faults:
  - {at: 1s, cut: b-c, for: 60s}
expect: {delivered: all, lost: 0}
"""


def _run(tmp_path: Path, name: str):
    sc = tmp_path / "blind.yaml"
    sc.write_text(SCENARIO)
    return run(str(sc), RunOptions(backend="loopback", out_dir=str(tmp_path / name), quiet=True), say=lambda _: None)


def test_hilnets_agent_reports_what_it_still_stores(tmp_path: Path) -> None:
    res = _run(tmp_path, "hilnet")
    assert res.exit_code == 1, res.detail  # not delivered: the cut holds them at b
    assert [b.fate for b in res.report.bundles] == ["stored", "stored"], res.report
    lost = next(r for r in res.report.results if r.name == "lost")
    assert lost.passed and lost.actual == "0"


def test_a_stack_that_cannot_report_its_store_is_not_guessed_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # found by name, whether tests/stacks is a package or not
    monkeypatch.setitem(registry.MODULES, "hilnet", "blind_stack")
    res = _run(tmp_path, "blind")
    assert res.exit_code == 1, res.detail
    assert [(b.fate, b.unobservable_at) for b in res.report.bundles] == [("not-observable", ("b",))] * 2, res.report
    results = {r.name: r for r in res.report.results}
    assert results["lost"].passed and results["lost"].actual == "0 (2 not observable for this stack)"
    for line in results["delivered"].failures:
        assert line.endswith("whether it is still stored at b (blind) is not observable for this stack"), line
    start = next(e for e in res.events if e.get("event") == "run-start")
    assert start["stacks"]["b"]["stack"] == "blind" and start["stacks"]["b"]["stored"] is False
    assert start["stacks"]["a"]["stack"] == "hilnet"
    view = LiveView(load_scenario_text(SCENARIO, "blind.yaml"), io.StringIO(), is_tty=False, quiet=True)
    for record in res.events:
        view.update(record)
    assert view.stored() == {"a": 0, "b": "?", "c": 0}  # the live view does not count a store it cannot see
