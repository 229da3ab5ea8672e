"""Every fate a bundle can have, named by the checks from a synthetic event log (pure).

One row per fate: the agent events a bundle's run leaves, the fate the verdict gives it,
and how the ``delivered`` failure names it. Only ``lost`` counts against ``lost``: a
bundle an agent dropped with a reason, or its source refused, had a fate of its own.
"""

from __future__ import annotations

import pytest

from hilnet.controller.checks import check_run
from hilnet.ledger import Ledger
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = """
hilnet: 1
name: fates
clock: {scale: 10, duration: 1m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
  c: {eid: ipn:3.0}
links:
  a-b: {ends: [a, b], medium: ethernet}
  b-c: {ends: [b, c], medium: ethernet}
traffic:
  - {name: t, from: a, to: c, size: 100B}
"""
KEY = "ipn:1.0/1/0"
S = 10**9


def agent(event: str, t: float, node: str, **fields: object) -> dict:
    return {"src": "agent", "event": event, "t_ns": int(t * S), "node": node, **fields}


def injected(*events: dict) -> list[dict]:
    inject = {"src": "controller", "event": "inject", "t_ns": S, "tag": "t#1", "traffic": "t"}
    inject |= {"frm": "a", "to": "c", "size": 100, "sha256": "x", "bundle": KEY}
    return [inject, agent("stored", 1.001, "a", bundle=KEY), *events]


def hop(frm: str, to: str, t: float) -> list[dict]:
    """``frm`` hands the bundle to ``to``, which stores it; ``frm`` lets its copy go."""
    return [agent("stored", t, to, bundle=KEY), agent("acked", t + 0.001, frm, bundle=KEY, by=to)]


def refused_at_source(reason: str) -> list[dict]:
    failed = {"src": "controller", "event": "inject-failed", "t_ns": S, "tag": "t#1", "traffic": "t"}
    failed |= {"frm": "a", "to": "c", "size": 100, "sha256": "x", "reason": reason}
    return [failed]


def dropped_at_b(reason: str) -> list[dict]:
    return injected(
        agent("received", 1.5, "b", bundle=KEY),
        agent("dropped", 1.5, "b", bundle=KEY, reason=reason),
        agent("acked", 1.501, "a", bundle=KEY, by="b"),  # b acknowledged: the CL took it, the agent dropped it
    )


UNSUPPORTED = "block type 200 (number 2) cannot be processed here and asks for the bundle's deletion (RFC 9171 4.2.4)"

# (id, events, fate, words in the delivered failure (None: it passes), whether lost fails)
ROWS = [
    ("delivered", injected(*hop("a", "b", 1.2), *hop("b", "c", 1.4), agent("delivered", 1.41, "c", bundle=KEY, sha256="x")), "delivered", None, False),
    ("stored", injected(*hop("a", "b", 1.2)), "stored", "last acknowledged by the next hop of a at 1.201s; still stored at b", False),
    ("expired", injected(agent("expired", 9, "a", bundle=KEY)), "expired", "last expired at a", False),
    ("dropped: hop limit", dropped_at_b("hop limit 1 reached"), "dropped", "dropped at b: hop limit 1 reached (at 1.5s)", False),
    ("dropped: no such node", dropped_at_b("destination dtn:none names no node"), "dropped", "dropped at b: destination dtn:none names no node", False),
    ("dropped: block asks for deletion", dropped_at_b(UNSUPPORTED), "dropped", f"dropped at b: {UNSUPPORTED}", False),
    (
        "dropped: BPSec check",
        injected(*hop("a", "b", 1.2), agent("security-failed", 1.4, "c", bundle=KEY, source="ipn:1.0", check="key-unwrap-failed", reason="no key for ipn:1.0"), agent("acked", 1.401, "b", bundle=KEY, by="c")),
        "dropped",
        "dropped at c: failed its BPSec check (key-unwrap-failed): no key for ipn:1.0",
        False,
    ),
    # A stack may drop a bundle it had stored (ION abandons one with no route): the copy is gone, not still stored.
    ("dropped after it was stored", injected(*hop("a", "b", 1.2), agent("dropped", 2, "b", bundle=KEY, reason="abandoned: no route")), "dropped", "dropped at b: abandoned: no route (at 2s)", False),
    (
        "refused at its source",
        [agent("refused", 1, "a", bundle=KEY, tag="t#1", reason="store full: 10 of 10 bundles"), *refused_at_source("refused: store full: 10 of 10 bundles")],
        "refused",
        "refused at a: store full: 10 of 10 bundles",
        False,
    ),
    ("not injected", refused_at_source("agent a is not running"), "not-injected", "not injected: agent a is not running", False),
    ("lost", injected(*hop("a", "b", 1.2), agent("acked", 1.4, "b", bundle=KEY, by="c")), "lost", "last acknowledged by the next hop of b", True),
    # A duplicate is dropped where the bundle is already: that drop is no fate.
    ("duplicate, delivered", injected(*hop("a", "b", 1.2), *hop("b", "c", 1.4), agent("delivered", 1.41, "c", bundle=KEY, sha256="x"), agent("dropped", 2, "c", bundle=KEY, reason="duplicate from ipn:2.0")), "delivered", None, False),
    ("duplicate, still stored", injected(*hop("a", "b", 1.2), agent("dropped", 2, "b", bundle=KEY, reason="duplicate from ipn:1.0")), "stored", "dropped at b at 2s; still stored at b", False),
    ("duplicate, then vanished", injected(agent("dropped", 2, "b", bundle=KEY, reason="duplicate from ipn:1.0"), agent("acked", 2.001, "a", bundle=KEY, by="b")), "lost", "last acknowledged by the next hop of a", True),
]  # fmt: skip


def judge(events: list[dict]):
    sc = load_scenario_text(SCENARIO)
    end = {"src": "controller", "event": "run-end", "t_ns": 30 * S, "reason": "duration"}
    return check_run(sc, compile_plan(sc), [*events, end])


@pytest.mark.parametrize(("events", "fate", "named", "lost"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_each_fate_is_named(events, fate, named, lost):
    rep = judge(events)
    (b,) = rep.bundles
    assert b.fate == fate
    results = {r.name: r for r in rep.results}
    if named is None:
        assert results["delivered"].passed
    else:
        assert not results["delivered"].passed
        (line,) = results["delivered"].failures
        assert line.startswith("t#1 (ipn:1.0 -> ipn:3.0) ") and named in line, line
    assert results["lost"].passed is not lost
    assert results["lost"].actual == ("1" if lost else "0")
    if lost:
        assert "is lost:" in results["lost"].failures[0]


def test_a_drop_with_a_reason_settles_the_run():
    """The controller's settle test stops waiting for a bundle an agent dropped for good."""
    assert Ledger.of(dropped_at_b("hop limit 1 reached")).settled(1)
    assert not Ledger.of(injected(*hop("a", "b", 1.2))).settled(1)  # still stored: not settled


def test_summary_carries_the_fate_and_the_drop():
    from hilnet.report.summary import _bundle

    (b,) = judge(dropped_at_b("hop limit 1 reached")).bundles
    s = _bundle(b)
    assert s["fate"] == "dropped"
    assert s["dropped"] == {"node": "b", "reason": "hop limit 1 reached", "t_ns": 15 * S // 10}
