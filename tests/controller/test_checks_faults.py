"""The plan oracle knows the faults, and a traffic stream judges its own bound (pure, synthetic logs)."""

from __future__ import annotations

import pytest

from hilnet.controller.checks import check_run
from hilnet.scenario.contact import Contact
from hilnet.scenario.faulted import Closure, closures, without_faults
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

S = 1_000_000_000

# scale 1 so scenario and wall time agree; 1 s of delay per hop
SCENARIO = """
hilnet: 1
name: cut-oracle
clock: {scale: 1, duration: 10m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
  c: {eid: ipn:3.0}
links:
  a-b: {ends: [a, b], medium: ethernet, delay: 1s}
  b-c: {ends: [b, c], medium: ethernet, delay: 1s}
traffic:
  - {name: urgent, from: a, to: c, start: 10s, every: 60s, count: 3, size: 100B, priority: expedited,
     expect: {within-plan: 10s}}
faults:
  - {at: 50s, cut: b-c, for: 2m}
expect: {within-plan: 5m}
"""


def _log(delivered_at: dict[int, int]) -> list[dict]:
    """Injections at 10 s, 70 s, 130 s; bundle ``i`` delivered at ``delivered_at[i]`` (scenario ns)."""
    evs: list[dict] = []
    for i, t in enumerate((10 * S, 70 * S, 130 * S)):
        key = f"ipn:1.0/{i}/0"
        evs.append(
            {
                "src": "controller",
                "event": "inject",
                "t_ns": t,
                "tag": f"urgent#{i + 1}",
                "traffic": "urgent",
                "frm": "a",
                "to": "c",
                "size": 100,
                "sha256": "x",
                "bundle": key,
            }
        )
        evs.append({"src": "agent", "event": "stored", "t_ns": t + 1, "node": "a", "bundle": key})
        evs.append(
            {"src": "agent", "event": "delivered", "t_ns": delivered_at[i], "node": "c", "bundle": key, "sha256": "x"}
        )
    evs.append({"src": "controller", "event": "run-end", "t_ns": 300 * S, "reason": "settled", "detail": None})
    return evs


def _judge(evs: list[dict], text: str = SCENARIO):
    sc = load_scenario_text(text)
    return check_run(sc, compile_plan(sc), evs)


def test_a_bundle_held_by_a_cut_is_judged_against_the_end_of_the_cut():
    # #1 crosses before the cut (~12 s); #2 reaches b at ~71 s while b-c is cut (50 s-170 s): the plan
    # alone says ~72 s, the plan and the faults ~171 s; #3 (130 s) likewise waits for 170 s.
    rep = _judge(_log({0: 13 * S, 1: 175 * S, 2: 176 * S}))
    arrivals = [b.plan_arrival_ns for b in rep.bundles]
    assert arrivals[0] == pytest.approx(12 * S, abs=S // 10)
    assert arrivals[1] == pytest.approx(171 * S, abs=S // 10)
    assert arrivals[2] == pytest.approx(171 * S, abs=S // 10)
    by = {r.name: r for r in rep.results}
    assert by["within-plan urgent"].passed, by["within-plan urgent"].failures
    assert by["within-plan"].passed


def test_a_stream_bound_fails_alone_and_names_the_late_bundle():
    rep = _judge(_log({0: 13 * S, 1: 190 * S, 2: 176 * S}))  # #2 arrives 19 s after the cut ends
    by = {r.name: r for r in rep.results}
    assert by["within-plan"].passed  # the run-wide 5m still holds
    stream = by["within-plan urgent"]
    assert not stream.passed
    assert stream.expected == "<= plan + 10s"
    assert stream.actual.startswith("1 late, max +19")
    assert len(stream.failures) == 1 and "urgent#2" in stream.failures[0]
    assert "the plan and the faults allowed" in stream.failures[0]


def test_without_a_cut_the_same_delivery_is_late():
    no_fault = SCENARIO.replace("faults:\n  - {at: 50s, cut: b-c, for: 2m}\n", "")
    rep = _judge(_log({0: 13 * S, 1: 175 * S, 2: 176 * S}), no_fault)
    assert rep.bundles[1].plan_arrival_ns == pytest.approx(72 * S, abs=S // 10)
    assert not {r.name: r for r in rep.results}["within-plan urgent"].passed


def test_closures_of_each_fault_kind():
    sc = load_scenario_text(
        SCENARIO.replace(
            "  - {at: 50s, cut: b-c, for: 2m}\n",
            "  - {at: 50s, cut: b-c, for: 2m}\n  - {at: 1m, crash: b, restart-after: 30s}\n"
            "  - {at: 3m, crash: c}\n  - {at: 4m, error-burst: a-b, for: 10s}\n",
        )
    )
    assert closures(sc) == (
        Closure(50 * S, 170 * S, link="b-c"),
        Closure(60 * S, 90 * S, node="b"),
        Closure(180 * S, 600 * S + 1, node="c"),  # never restarted: closed past the end of the run
    )


def test_without_faults_splits_and_removes_contacts():
    ab = Contact("a", "b", 0, 100, 10, 1)
    ba = Contact("b", "a", 0, 100, 10, 1)
    bc = Contact("b", "c", 20, 40, 10, 1)
    shut = (Closure(30, 50, link="a-b"), Closure(10, 60, node="c"))
    got = without_faults((ab, ba, bc), ("a-b", "a-b", "b-c"), shut)
    assert got == (
        Contact("a", "b", 0, 30, 10, 1),
        Contact("a", "b", 50, 100, 10, 1),
        Contact("b", "a", 0, 30, 10, 1),
        Contact("b", "a", 50, 100, 10, 1),
    )
    # the timebase map applies to the closures (scenario) only: wall = scenario / 10 here
    assert without_faults((ab,), ("a-b",), (Closure(300, 500, link="a-b"),), lambda t: t // 10) == (
        Contact("a", "b", 0, 30, 10, 1),
        Contact("a", "b", 50, 100, 10, 1),
    )
    with pytest.raises(ValueError, match="link names"):
        without_faults((ab,), (), ())
