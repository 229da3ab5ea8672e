"""checks.check_run on runs that broke or did not inject everything (pure, synthetic logs)."""

from __future__ import annotations

from hilnet.controller.checks import check_run
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = """
hilnet: 1
name: judged
clock: {scale: 10, duration: 1m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
links:
  a-b: {ends: [a, b], medium: ethernet}
traffic:
  - {name: t, from: a, to: b, start: 1s, every: 1s, count: 4, size: 100B}
"""


def _log(injected: int, delivered: int, end_reason: str, failed: tuple[int, ...] = ()) -> list[dict]:
    evs = []
    for i in range(injected):
        tag, key = f"t#{i + 1}", f"ipn:1.0/{i}/0"
        t = (i + 1) * 10**9
        if i in failed:
            evs.append(
                {
                    "src": "controller",
                    "event": "inject-failed",
                    "t_ns": t,
                    "tag": tag,
                    "traffic": "t",
                    "frm": "a",
                    "to": "b",
                    "size": 100,
                    "sha256": "x",
                    "reason": "refused: disk full",
                }
            )
            continue
        evs.append(
            {
                "src": "controller",
                "event": "inject",
                "t_ns": t,
                "tag": tag,
                "traffic": "t",
                "frm": "a",
                "to": "b",
                "size": 100,
                "sha256": "x",
                "bundle": key,
            }
        )
        evs.append({"src": "agent", "event": "stored", "t_ns": t + 1, "node": "a", "bundle": key})
        if i < delivered:
            evs.append({"src": "agent", "event": "delivered", "t_ns": t + 5, "node": "b", "bundle": key, "sha256": "x"})
            evs.append({"src": "agent", "event": "acked", "t_ns": t + 6, "node": "a", "bundle": key})
    evs.append(
        {
            "src": "controller",
            "event": "run-end",
            "t_ns": 30 * 10**9,
            "reason": end_reason,
            "detail": "agent b exited on its own (status -9)" if end_reason == "error" else None,
        }
    )
    return evs


def _judge(evs):
    sc = load_scenario_text(SCENARIO)
    return check_run(sc, compile_plan(sc), evs)


def test_complete_run_passes():
    rep = _judge(_log(4, 4, "settled"))
    assert rep.passed and [r.name for r in rep.results][0] == "delivered"


def test_broken_run_fails_even_if_what_it_injected_arrived():
    rep = _judge(_log(2, 2, "error"))
    assert not rep.passed
    run = rep.results[0]
    assert run.name == "run" and not run.passed and "agent b exited on its own" in run.failures[0]
    delivered = next(r for r in rep.results if r.name == "delivered")
    assert delivered.expected == "all 4" and delivered.actual == "2 of 4" and not delivered.passed
    assert any("2 bundles of the traffic were never injected" in f for f in delivered.failures)


def test_interrupted_run_fails():
    rep = _judge(_log(4, 4, "interrupted"))
    assert not rep.passed and rep.results[0].name == "run" and rep.results[0].actual == "interrupted"


def test_refused_injection_is_not_counted_lost():
    rep = _judge(_log(4, 3, "error", failed=(3,)))
    fates = {b.tag: b.fate for b in rep.bundles}
    assert fates["t#4"] == "not-injected"
    lost = next(r for r in rep.results if r.name == "lost")
    assert lost.passed and lost.actual == "0"


def test_bundle_that_vanished_is_still_lost():
    evs = _log(4, 4, "settled")
    # t#2 is never delivered and its store forgets it without an event
    evs = [e for e in evs if not (e.get("bundle") == "ipn:1.0/1/0" and e["event"] in ("delivered", "stored"))]
    rep = _judge(evs)
    lost = next(r for r in rep.results if r.name == "lost")
    assert not lost.passed and "t#2" in lost.failures[0]


def test_loss_after_an_unacknowledged_mtcp_send_is_put_on_the_cl():
    evs = _log(4, 4, "settled")
    # t#2 left a's store after an MTCP send (no acknowledgement) and never arrived at b
    evs = [e for e in evs if not (e.get("bundle") == "ipn:1.0/1/0" and e["event"] in ("delivered", "acked"))]
    evs.append(
        {
            "src": "agent",
            "event": "forwarded",
            "t_ns": 2 * 10**9 + 2,
            "node": "a",
            "bundle": "ipn:1.0/1/0",
            "to": "ipn:2.0",
            "cla": "mtcp",
            "size": 100,
        }
    )
    evs.append(
        {
            "src": "agent",
            "event": "sent",
            "t_ns": 2 * 10**9 + 3,
            "node": "a",
            "bundle": "ipn:1.0/1/0",
            "to": "ipn:2.0",
            "cla": "mtcp",
        }
    )
    evs.sort(key=lambda e: e["t_ns"])
    rep = _judge(evs)
    assert {b.tag: b.stored_at for b in rep.bundles}["t#2"] == ()  # sent: a holds it no more
    lost = next(r for r in rep.results if r.name == "lost")
    assert not lost.passed and len(lost.failures) == 1
    assert "lost after an unacknowledged MTCP send from a to b" in lost.failures[0]
