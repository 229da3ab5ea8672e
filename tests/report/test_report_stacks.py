"""Which stack played each node, in every report: console summary, HTML, summary.json, ``hilnet report``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from report_synth import synth_events, write_run

from hilnet.ledger import OBSERVES_ALL, Observes
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = """\
hilnet: 1
name: mixed
clock: {scale: 60, duration: 30m}
nodes:
  a: {eid: ipn:1.0, stack: ion}
  r: {eid: ipn:2.0}
  b: {eid: ipn:3.0, stack: ion}
links:
  a-r: {ends: [a, r], medium: ethernet, cl: tcpclv3, rate: 1Mbit/s, delay: 10ms}
  r-b: {ends: [r, b], medium: ethernet, cl: ltp, rate: 1Mbit/s, delay: 10ms}
traffic: [{name: t, from: a, to: b, start: 1m, every: 4m, count: 3, size: 1KiB}]
expect: {delivered: all}
"""
ION_LIKE = Observes(frozenset({"received", "stored", "sent", "delivered", "expired"}), stored=True, crash=True)


def _events(with_stacks: bool) -> list[dict]:
    scenario = load_scenario_text(SCENARIO, "scenario.yaml")
    events = synth_events(scenario, compile_plan(scenario))
    if with_stacks:
        start = next(e for e in events if e["event"] == "run-start")
        start["stacks"] = {
            "a": {"stack": "ion", **ION_LIKE.as_record()},
            "r": {"stack": "hilnet", **OBSERVES_ALL.as_record()},
            "b": {"stack": "ion", **ION_LIKE.as_record()},
        }
    return events


def _report(folder: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hilnet", "report", str(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_every_report_names_each_nodes_stack(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", SCENARIO, _events(with_stacks=True))
    p = _report(folder)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\nstacks: ion on a, b; hilnet on r\n" in p.stdout
    assert "stacks: ion on a, b; hilnet on r" in (folder / "report.html").read_text()
    assert json.loads((folder / "summary.json").read_text())["stacks"] == {"a": "ion", "r": "hilnet", "b": "ion"}


def test_a_run_recorded_without_stacks_reads_them_from_its_scenario(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "old", SCENARIO, _events(with_stacks=False))
    p = _report(folder)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "stacks: ion on a, b; hilnet on r" in p.stdout
