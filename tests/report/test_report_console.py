"""The live view (terminal and plain) and the end-of-run summary table."""

from __future__ import annotations

import io

from report_synth import synth_events

from hilnet.controller.checks import check_run
from hilnet.report.console import LiveView, format_summary
from hilnet.report.meta import RunMeta
from hilnet.scenario.generate import Shape, chain
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

S = 1_000_000_000
SCENARIO = """\
hilnet: 1
name: console
seed: 3
clock: {scale: 60, duration: 30m}
nodes: {a: {eid: ipn:1.0}, r: {eid: ipn:2.0}, b: {eid: ipn:3.0}}
links:
  a-r: {ends: [a, r], medium: ethernet, rate: 1Mbit/s, delay: 10ms, up: [0m-10m, 15m-30m]}
  r-b: {ends: [r, b], medium: ethernet, rate: 1Mbit/s, delay: 10ms}
traffic: [{name: t, from: a, to: b, start: 1m, every: 4m, count: 4, size: 1KiB}]
faults: [{at: 20m, crash: r, restart-after: 1m}]
expect: {delivered: all, within: 8m}
"""


def _setup(**bad):
    scenario = load_scenario_text(SCENARIO, "scenario.yaml")
    plan = compile_plan(scenario)
    events = synth_events(scenario, plan, **bad)
    return scenario, plan, events


def test_plain_view_prints_notable_events_and_rate_limited_progress():
    scenario, _, events = _setup()
    out = io.StringIO()
    view = LiveView(scenario, out, is_tty=False, interval_ns=5 * S)
    for e in events:
        view.update(e)
        view.render(e["wall_ns"])
    view.close(events[-1]["wall_ns"])
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "[10:00] link a-r down" in text and "[15:00] link a-r up" in text
    assert "[20:00] fault: agent r crashed" in text and "[21:00] agent r restarted" in text
    assert "delivered t#0 at b after" in text
    assert "run ended: settled" in text
    progress = [line for line in text.splitlines() if "% of 30:00" in line]
    # events span 30 scenario minutes = 30 s of wall time: one line per 5 s at most, plus the last
    assert 2 <= len(progress) <= 30 // 5 + 2
    assert progress[-1].endswith("delivered 4/4, stored a=0 r=0 b=0")


def test_view_tracks_state():
    scenario, _, events = _setup(lose={"t#2"})
    view = LiveView(scenario, io.StringIO(), is_tty=False, quiet=True)
    for e in events:
        if e["t_ns"] > 14 * 60 * S:
            break
        view.update(e)
    assert view.link_state("a-r") == "down" and view.link_state("r-b") == "up"
    assert view.stored() == {"a": 1, "r": 0, "b": 0}  # t#3, injected at 13m, waits for the window at 15m
    assert view.ledger.delivered() == 2  # t#0, t#1; t#2 was lost on the way


def test_planned_state_before_any_link_record():
    scenario, _, _ = _setup()
    view = LiveView(scenario, io.StringIO(), is_tty=True)
    view.update({"t_ns": 11 * 60 * S, "src": "controller", "event": "progress"})
    assert view.link_state("a-r") == "down" and view.link_state("r-b") == "up"


def test_terminal_view_redraws_one_block():
    scenario, _, events = _setup()
    out = io.StringIO()
    view = LiveView(scenario, out, is_tty=True)
    view.render(0)
    first = out.getvalue()
    assert "\x1b[" in first and "console" in first and "delivered  0 of 4" in first
    n = len(view.block(0))
    assert first.count("\n") == n
    for e in events:
        view.update(e)
    view.render(events[-1]["wall_ns"])
    second = out.getvalue()[len(first) :]
    # moves up over the old block and clears it, then the notable lines, then the new block
    assert second.startswith(f"\x1b[{n}F\x1b[J")
    assert "link a-r down" in second and "delivered  4 of 4" in second
    assert second.index("link a-r down") < second.index("delivered  4 of 4")


def test_quiet_view_prints_nothing():
    scenario, _, events = _setup()
    out = io.StringIO()
    for tty in (True, False):
        view = LiveView(scenario, out, is_tty=tty, quiet=True)
        for e in events:
            view.update(e)
            view.render(e["wall_ns"])
        view.close(events[-1]["wall_ns"])
    assert out.getvalue() == ""


def test_summary_table():
    scenario, plan, events = _setup(lose={"t#2"})
    report = check_run(scenario, plan, events)
    text = format_summary(report, RunMeta.from_events("runs/x", scenario, events))
    lines = text.splitlines()
    assert lines[0].startswith("FAIL: console (seed 3, backend loopback")
    assert any(line.startswith("FAIL  delivered") and "3 of 4" in line for line in lines)
    assert any(line.startswith("PASS  within") for line in lines)
    assert any(line.startswith("  FAIL lost: t#2") for line in lines)
    stream = next(line for line in lines if line.startswith("t "))
    assert "3/4" in stream
    assert any(line.startswith("schedule fidelity: ") and "p99" in line for line in lines)
    assert lines[-1] == "run folder: runs/x"


def test_update_alone_draws_for_a_subscriber_that_only_forwards_records():
    # hilnet run hands LiveView.update to the event log as its only callback
    scenario, _, events = _setup()
    for tty in (False, True):
        out = io.StringIO()
        view = LiveView(scenario, out, is_tty=tty)
        view.update({"t_ns": -5 * S, "wall_ns": -S // 10, "src": "controller", "event": "log"})  # testbed setup
        for e in events:
            view.update(e)
        view.close()
        text = out.getvalue()
        assert "link a-r down" in text and "run ended: settled" in text
        assert ("delivered  4 of 4" if tty else "delivered 4/4") in text[-300:]
        if tty:  # redraws are rate-limited by wall time, not one per record
            assert text.count("\x1b[J") < len(events)
        else:
            assert 2 <= sum("% of 30:00" in line for line in text.splitlines()) <= 30 // 5 + 2


def test_print_summary_reads_meta_from_the_run_folder(tmp_path):
    from hilnet.report import write_reports
    from hilnet.report.console import print_summary

    scenario, plan, events = _setup()
    report = check_run(scenario, plan, events)
    write_reports(
        tmp_path,
        scenario,
        plan,
        events,
        report,
        {"backend": "netns", "seed": 99, "junit": str(tmp_path / "ci" / "j.xml")},
    )
    out = io.StringIO()
    print_summary(report, tmp_path, out)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("PASS: console (seed 99, backend netns, wall 30s")
    assert (tmp_path / "ci" / "j.xml").read_bytes() == (tmp_path / "junit.xml").read_bytes()


def test_print_summary_without_a_summary_file(tmp_path):
    from hilnet.report.console import print_summary

    scenario, plan, events = _setup(lose={"t#0"})
    out = io.StringIO()
    print_summary(check_run(scenario, plan, events), tmp_path / "gone", out)
    text = out.getvalue()
    assert text.startswith("FAIL: gone (seed -, backend -") and text.endswith(f"run folder: {tmp_path / 'gone'}\n")


def test_a_refused_tls_negotiation_is_said_once_per_node_and_reason():
    scenario, _, _ = _setup()
    out = io.StringIO()
    view = LiveView(scenario, out, is_tty=False)
    reason = "TLS: peer claims node id ipn:2.0 but its certificate is for ipn:3.0"
    for i in range(3):  # the connector's retries
        rec = {"src": "agent", "event": "tls-failed", "node": "r", "cla": "tcpcl", "reason": reason}
        view.update(rec | {"t_ns": (60 + i) * S, "wall_ns": (1 + i) * S})
    text = out.getvalue()
    assert text.count("TLS refused at r: " + reason) == 1


def test_a_large_run_keeps_its_live_view_a_few_lines() -> None:
    scenario = load_scenario_text(chain(200, Shape()), "chain.yaml")
    view = LiveView(scenario, io.StringIO(), is_tty=True)
    block = view.block(0)
    assert len(block) < 10, block  # not a line per link
    assert any("links      " in line and "199" in line for line in block)
    line = view.progress_line(0)
    assert len(line) < 200 and "n150" not in line  # the nodes holding nothing are not listed
