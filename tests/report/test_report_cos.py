"""Reports by class of service: per-class rows in every stream table, bundle lines coloured by class."""

from __future__ import annotations

import json

from report_synth import synth_events

from hilnet.controller.checks import check_run
from hilnet.report import timeline
from hilnet.report.console import format_summary
from hilnet.report.figures import class_stats, stream_table
from hilnet.report.html import render_html
from hilnet.report.meta import RunMeta
from hilnet.report.summary import build_summary
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = """\
hilnet: 1
name: classes
seed: 3
clock: {scale: 60, duration: 30m}
nodes: {a: {eid: ipn:1.0}, b: {eid: ipn:3.0}}
links:
  a-b: {ends: [a, b], medium: ethernet, rate: 1Mbit/s, delay: 10ms}
traffic:
  - {name: tweets, from: a, to: b, start: 1m, every: 4m, count: 4, size: 400B, priority: expedited, ordinal: 5}
  - {name: notes, from: a, to: b, start: 2m, count: 1, size: 1KiB}
  - {name: photos, from: a, to: b, start: 3m, every: 10m, count: 2, size: 10KiB, priority: bulk}
expect: {delivered: all}
"""


def _report(**bad):
    scenario = load_scenario_text(SCENARIO, "scenario.yaml")
    plan = compile_plan(scenario)
    events = synth_events(scenario, plan, **bad)
    return scenario, events, check_run(scenario, plan, events)


def test_each_bundle_knows_its_class_from_the_log():
    _, _, report = _report()
    by_tag = {b.tag: (b.priority, b.ordinal) for b in report.bundles}
    assert by_tag["tweets#0"] == ("expedited", 5) and by_tag["photos#1"] == ("bulk", 0)
    assert by_tag["notes#0"] == ("normal", 0)


def test_class_rows_follow_the_stream_rows_most_urgent_first():
    _, _, report = _report(lose={"photos#1"})
    rows = stream_table(report)
    assert [(name, s.priority) for name, s in rows] == [
        ("tweets", "expedited"),
        ("notes", "normal"),
        ("photos", "bulk"),
        ("(all)", "expedited"),
        ("(all)", "normal"),
        ("(all)", "bulk"),
    ]
    bulk = class_stats(report)[-1]
    assert (bulk.delivered, bulk.injected) == (1, 2)
    assert bulk.latency_p50_ns is not None and bulk.lateness_p50_ns is not None


def test_console_summary_and_html_show_the_class_rows():
    scenario, events, report = _report()
    meta = RunMeta.from_events("runs/x", scenario, events)
    lines = format_summary(report, meta).splitlines()
    header = next(line for line in lines if line.startswith("stream "))
    assert header.split()[:3] == ["stream", "class", "delivered"]
    assert any(line.split()[:3] == ["(all)", "expedited", "4/4"] for line in lines)
    assert any(line.split()[:3] == ["photos", "bulk", "2/2"] for line in lines)
    summary = json.loads(json.dumps(build_summary(report, events, meta)))
    assert summary["classes"]["expedited"]["delivered"] == 4 and summary["streams"]["photos"]["priority"] == "bulk"
    assert summary["bundles"][0]["priority"] == "expedited"
    html = render_html(scenario, events, report, meta, None, "")
    assert "<th>class</th>" in html and "(all)" in html


def test_timeline_colours_each_bundle_line_by_its_class():
    _, _, report = _report()

    class Axes:
        def __init__(self):
            self.lines: list[str] = []

        def plot(self, xs, ys, color=None, **kw):
            if len(xs) > 1:
                self.lines.append(color)

    ax = Axes()
    colour = timeline._draw_bundles(ax, report, {"a": 1.0, "b": 0.0})
    assert colour["tweets"] == timeline._CLASS_COLOURS["expedited"]
    assert colour["photos"] == timeline._CLASS_COLOURS["bulk"] != colour["tweets"]
    want = [timeline._CLASS_COLOURS[b.priority] for b in report.bundles]
    assert ax.lines == want and len(set(want)) == 3
