"""``hilnet run`` given bad input or a testbed that breaks under it.

Bad input exits 2 before anything starts. A testbed that breaks mid-run (an
agent killed from outside, an emulator port that vanishes, a full disk) or a
Ctrl-C ends the run with exit 2 and the cause in the message, tears
everything down and keeps events.jsonl; never a hang (every subprocess has a
timeout).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from run_e2e_harness import (
    BACKENDS,
    PYTHON,
    LeakWatch,
    events,
    finish,
    hilnet_run,
    interrupt,
    needs_netns,
    start_run,
    summary,
    wait_for_event,
    write_scenario,
)

GOOD = """
    hilnet: 1
    name: good
    clock: {scale: 10, duration: 1m}
    nodes:
      a: {eid: ipn:1.0}
      b: {eid: ipn:2.0}
    links:
      a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms}
    traffic:
      - {name: t, from: a, to: b, start: 1s, count: 1, size: 1KiB}
"""

MALFORMED = {
    "yaml-syntax": ("hilnet: 1\nclock: {scale: 10, duration: 1m\nnodes: {}\n", r":\d+:\d+: "),
    "no-clock": ("hilnet: 1\nnodes:\n  a: {eid: ipn:1.0}\n", r":\d+:\d+: .*clock"),
    "unknown-end": (
        "hilnet: 1\nclock: {scale: 10, duration: 1m}\nnodes:\n  a: {eid: ipn:1.0}\n"
        "links:\n  a-b: {ends: [a, zz], medium: ethernet}\n",
        r":6:\d+: .*'zz'",
    ),
    "bad-rate": (
        "hilnet: 1\nclock: {scale: 10, duration: 1m}\nnodes:\n  a: {eid: ipn:1.0}\n  b: {eid: ipn:2.0}\n"
        "links:\n  a-b: {ends: [a, b], medium: ethernet, rate: 10 Mbps?}\n",
        r":7:\d+: ",
    ),
    "duplicate-key": (
        "hilnet: 1\nclock: {scale: 10, duration: 1m}\nnodes:\n  a: {eid: ipn:1.0}\n  a: {eid: ipn:2.0}\n",
        r":5:\d+: .*a",
    ),
    "no-path": (
        "hilnet: 1\nclock: {scale: 10, duration: 1m}\nnodes:\n  a: {eid: ipn:1.0}\n  b: {eid: ipn:2.0}\n"
        "traffic:\n  - {from: a, to: b, size: 1KiB}\n",
        r":\d+:\d+: ",
    ),
    "window-after-end": (
        "hilnet: 1\nclock: {scale: 10, duration: 1m}\nnodes:\n  a: {eid: ipn:1.0}\n"
        "  b: {eid: ipn:2.0}\nlinks:\n  a-b: {ends: [a, b], medium: serial, up: [30s-2m]}\n",
        r":7:\d+: ",
    ),
    "not-a-mapping": ("- just\n- a list\n", r":\d+:\d+: "),
}


def _assert_nothing_started(out: Path, proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # No run folder at all: no agent was started, no store or log written.
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_scenario_exits_2_before_anything_starts(tmp_path, case):
    text, pattern = MALFORMED[case]
    sc = tmp_path / f"{case}.yaml"
    sc.write_text(text)
    out = tmp_path / "run"
    p = hilnet_run(sc, out, "loopback", timeout=30)
    _assert_nothing_started(out, p)
    assert str(sc) in p.stderr and re.search(pattern, p.stderr), p.stderr


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--scale", "0"], "--scale must be above 0"),
        (["--scale", "-5"], "--scale must be above 0"),
        (["--backend", "bench"], "Invalid value for '--backend'"),
        (["--bench", "no-such-bench.yaml"], "no-such-bench.yaml: cannot read file"),
        (["--bench", "no-such-bench.yaml", "--backend", "loopback"], "--bench runs on the bench backend"),
        (["--seed", "many"], "Invalid value for '--seed'"),
    ],
)
def test_bad_options_exit_2_before_anything_starts(tmp_path, args, needle):
    sc = write_scenario(tmp_path, "good", GOOD)
    out = tmp_path / "run"
    p = subprocess.run(
        [PYTHON, "-m", "hilnet", "run", str(sc), "--out", str(out), "-q", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    _assert_nothing_started(out, p)
    assert needle in p.stderr, p.stderr


def test_missing_scenario_file_exits_2(tmp_path):
    out = tmp_path / "run"
    p = hilnet_run(tmp_path / "nowhere.yaml", out, "loopback", timeout=30)
    _assert_nothing_started(out, p)
    assert "nowhere.yaml" in p.stderr and "No such file" in p.stderr


# A run long enough to break from outside: 12 s of wall time, steady traffic over both media.
LONG = """
    hilnet: 1
    name: long
    clock: {scale: 10, duration: 2m}
    nodes:
      a: {eid: ipn:1.0}
      b: {eid: ipn:2.0}
      c: {eid: ipn:3.0}
    links:
      a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms}
      b-c: {ends: [b, c], medium: serial, baud: 115200, delay: 5ms}
    traffic:
      - {name: steady, from: a, to: c, start: 1s, every: 2s, count: 50, size: 1KiB}
"""


def _broken_run_is_recorded(out: Path, cause: str) -> None:
    evs = events(out)
    end = [e for e in evs if e.get("event") == "run-end"]
    assert len(end) == 1 and end[0]["reason"] == "error" and cause in (end[0]["detail"] or ""), end
    s = summary(out)
    assert s["passed"] is False
    run_check = next(r for r in s["results"] if r["name"] == "run")
    assert not run_check["passed"] and cause in run_check["failures"][0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_agent_killed_from_outside_ends_run_with_exit_2(tmp_path, backend):
    leaks = LeakWatch()
    sc = write_scenario(tmp_path, "long", LONG)
    out = tmp_path / "run"
    proc = start_run(sc, out, backend)
    wait_for_event(out, lambda e: e.get("event") == "delivered", proc)
    victim = next(e for e in events(out) if e.get("event") == "ready" and e.get("node") == "b")
    os.kill(victim["pid"], signal.SIGKILL)  # nobody asked for this: not a scenario fault
    t = time.monotonic()
    rc, stdout, stderr = finish(proc, timeout=60)
    assert rc == 2, stdout + stderr
    assert "agent b exited on its own (status -9)" in stderr
    assert time.monotonic() - t < 30  # noticed within a poll, torn down, not run to the end
    _broken_run_is_recorded(out, "agent b exited on its own")
    leaks.check(out, {proc.pid})


@pytest.mark.netns
@needs_netns
def test_emulator_port_vanishing_ends_run_with_exit_2(tmp_path):
    leaks = LeakWatch()
    sc = write_scenario(tmp_path, "long", LONG)
    out = tmp_path / "run"
    proc = start_run(sc, out, "netns")
    tb = wait_for_event(out, lambda e: e.get("event") == "testbed", proc)
    wait_for_event(out, lambda e: e.get("event") == "delivered", proc)
    port = tb["links"]["a-b"][0].removeprefix("eth://")
    subprocess.run(["ip", "link", "del", port], check=True, timeout=10)
    rc, stdout, stderr = finish(proc, timeout=60)
    assert rc == 2, stdout + stderr
    assert "link a-b" in stderr, stderr
    _broken_run_is_recorded(out, "link a-b")
    leaks.check(out, {proc.pid})


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("backend", BACKENDS)
def test_full_disk_ends_run_with_exit_2(tmp_path, backend):
    leaks = LeakWatch()
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True, timeout=10)
    try:
        sc = write_scenario(
            tmp_path,
            "fill",
            """
            hilnet: 1
            name: fill
            clock: {scale: 10, duration: 1m}
            nodes:
              a: {eid: ipn:1.0}
              b: {eid: ipn:2.0}
            links:
              a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms, up: [50s-1m]}
            traffic:
              - {name: bulk, from: a, to: b, start: 1s, every: 1s, count: 20, size: 300KiB}
        """,
        )
        out = disk / "run"
        p = hilnet_run(sc, out, backend, timeout=90)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "disk full" in p.stderr or "No space left on device" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
        leaks.check(out)
    finally:
        subprocess.run(["umount", "-l", str(disk)], timeout=10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_tears_down_and_keeps_the_event_log(tmp_path, backend):
    leaks = LeakWatch()
    sc = write_scenario(tmp_path, "long", LONG)
    out = tmp_path / "run"
    proc = start_run(sc, out, backend)
    wait_for_event(out, lambda e: e.get("event") == "delivered", proc)
    interrupt(proc)
    rc, stdout, stderr = finish(proc, timeout=60)
    assert rc == 2, stdout + stderr
    assert "interrupted" in stderr
    evs = events(out)
    end = [e for e in evs if e.get("event") == "run-end"]
    assert len(end) == 1 and end[0]["reason"] == "interrupted"
    assert any(e.get("event") == "delivered" for e in evs)
    assert any(e.get("event") == "link-stats" for e in evs)  # the links were read before they went
    leaks.check(out, {proc.pid})
