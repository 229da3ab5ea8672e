"""write_reports over synthetic run logs: summary.json, junit.xml, timeline.png, report.html."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from report_synth import synth_events, write_run

from hilnet.controller.checks import check_run
from hilnet.report.meta import RunMeta
from hilnet.report.write import write_reports
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

# Three nodes so that a bundle has a relay to be lost at; a window gap, a change,
# a cut, a crash and a burst so that every timeline element is drawn.
SCENARIO = """\
hilnet: 1
name: relay <test> & "quotes"
description: Two hops with a gap, a cut and a crash.
seed: 11
clock: {scale: 30, duration: 20m}
nodes:
  src: {eid: ipn:1.0}
  relay: {eid: ipn:2.0}
  dst: {eid: ipn:3.0}
links:
  src-relay:
    ends: [src, relay]
    medium: ethernet
    rate: 10Mbit/s
    delay: 50ms
    up: [0m-8m, 10m-20m]
  relay-dst:
    ends: [relay, dst]
    medium: serial
    baud: 115200
    delay: 100ms
    changes: [{at: 12m, delay: 200ms}]
traffic:
  - {name: pics, from: src, to: dst, start: 1m, every: 3m, count: 4, size: 2KiB}
  - {name: notes, from: src, to: dst, start: 2m, count: 2, size: 300B}
faults:
  - {at: 5m, cut: relay-dst, for: 2m}
  - {at: 14m, crash: relay, restart-after: 30s}
  - {at: 16m, error-burst: src-relay, for: 1m}
expect: {delivered: all, within: 10m, duplicates: 0, intact: true, lost: 0}
"""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(tmp_path: Path, **bad) -> tuple[Path, dict]:
    scenario = load_scenario_text(SCENARIO, "scenario.yaml")
    plan = compile_plan(scenario)
    events = synth_events(scenario, plan, **bad)
    folder = write_run(tmp_path / "run", SCENARIO, events)
    report = check_run(scenario, plan, events)
    paths = write_reports(folder, scenario, plan, events, report, RunMeta.from_events(folder, scenario, events))
    return folder, {"paths": paths, "report": report, "scenario": scenario, "events": events}


def test_passing_run_writes_every_report(tmp_path):
    folder, r = _run(tmp_path)
    assert [p.name for p in r["paths"]] == ["summary.json", "junit.xml", "timeline.png", "report.html"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["passed"] is True
    assert summary["scenario"] == 'relay <test> & "quotes"'
    assert summary["seed"] == 11 and summary["backend"] == "loopback"
    assert summary["end_reason"] == "settled"
    assert [x["name"] for x in summary["results"]] == [
        "delivered",
        "within",
        "duplicates",
        "intact",
        "lost",
        "fidelity",
    ]
    assert summary["streams"]["pics"]["delivered"] == 4 and summary["streams"]["pics"]["injected"] == 4
    assert summary["streams"]["notes"] == {**summary["streams"]["notes"], "delivered": 2, "injected": 2}
    assert len(summary["bundles"]) == 6
    b = summary["bundles"][0]
    assert b["tag"] == "pics#0" and b["fate"] == "delivered" and b["path"] == ["src", "relay", "dst"]
    assert b["latency_ns"] == b["delivered_ns"] - b["injected_ns"] > 0
    assert b["plan_arrival_ns"] is not None and b["lateness_ns"] == b["delivered_ns"] - b["plan_arrival_ns"]
    assert summary["fidelity"]["edges"] == len(r["report"].fidelity.edges) > 0
    assert summary["fidelity"]["max_ns"] >= summary["fidelity"]["p50_ns"] > 0
    assert summary["links"]["src-relay"]["a->b"]["drops"] == {"gate": 1}
    assert summary["wall_duration_ns"] == max(e["wall_ns"] for e in r["events"])


def test_failing_run_names_failures_in_summary_and_junit(tmp_path):
    folder, r = _run(tmp_path, lose={"pics#1"}, corrupt={"notes#0"}, duplicate={"pics#3"})
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["passed"] is False
    by_name = {x["name"]: x for x in summary["results"]}
    assert {n for n, x in by_name.items() if not x["passed"]} == {"delivered", "duplicates", "intact", "lost"}
    assert any("pics#1" in line for line in by_name["lost"]["failures"])
    lost = next(b for b in summary["bundles"] if b["tag"] == "pics#1")
    assert lost["fate"] == "lost" and lost["delivered_ns"] is None and lost["last_seen"]["event"] == "acked"
    assert next(b for b in summary["bundles"] if b["tag"] == "pics#3")["deliveries"] == 2

    root = ET.parse(folder / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite.get("name") == 'relay <test> & "quotes"'
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [x.name for x in r["report"].results]
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"delivered", "duplicates", "intact", "lost"}
    assert suite.get("failures") == "4" and suite.get("tests") == "6"
    assert "pics#1" in failed["lost"].get("message")
    assert "pics#3" in failed["duplicates"].get("message")
    assert float(suite.get("time")) == pytest.approx(summary["wall_duration_ns"] / 1e9, abs=1e-3)


def test_passing_junit_has_no_failures(tmp_path):
    folder, r = _run(tmp_path)
    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert len(suite.findall("testcase")) == len(r["report"].results) == 6
    assert suite.findall("testcase/failure") == []
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["seed"] == "11" and props["end_reason"] == "settled"


def test_timeline_is_a_png(tmp_path):
    folder, _ = _run(tmp_path, lose={"pics#1"})
    data = (folder / "timeline.png").read_bytes()
    assert data.startswith(PNG_MAGIC)
    # IHDR: width and height, big-endian, right after the magic and chunk header
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 300


def test_html_is_self_contained_and_escaped(tmp_path):
    folder, _ = _run(tmp_path, lose={"pics#1"})
    page = (folder / "report.html").read_text()
    assert '<span class="verdict FAIL">FAIL</span>' in page
    assert "data:image/png;base64," in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "url(" not in page and "@import" not in page
    # the scenario name is data: escaped, never markup
    assert "relay &lt;test&gt; &amp; &quot;quotes&quot;" in page and "<test>" not in page
    for heading in ("Expectations", "Traffic streams", "Bundles", "Schedule fidelity", "Link statistics"):
        assert f"<h2>{heading}</h2>" in page
    assert "pics#1" in page and "src → relay" in page


def test_passing_html_says_pass(tmp_path):
    folder, _ = _run(tmp_path)
    page = (folder / "report.html").read_text()
    assert '<span class="verdict PASS">PASS</span>' in page and "<title>PASS: " in page
    assert '<tr class="bad">' not in page and '<ul class="fail">' not in page


def test_reports_without_matplotlib_skip_only_the_timeline(tmp_path, monkeypatch):
    import hilnet.report.write as write

    monkeypatch.setattr(write, "matplotlib_available", lambda: False)
    folder, r = _run(tmp_path)
    assert [p.name for p in r["paths"]] == ["summary.json", "junit.xml", "report.html"]
    assert not (folder / "timeline.png").exists()
    page = (folder / "report.html").read_text()
    assert "matplotlib is not installed" in page and "data:image/png" not in page


def test_report_module_imports_without_matplotlib():
    # A board install has no matplotlib: importing the report package must not need it.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import hilnet.report.write, hilnet.report.console, hilnet.commands.report\n"
        "from hilnet.report.timeline import matplotlib_available\n"
        "assert not matplotlib_available()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
