"""The checks over nodes whose stack observes less than hilnet's agent (pure, synthetic logs).

A bundle whose trail ends at a node that cannot report its store is "not
observable for this stack", never "lost"; the same trail through hilnet's
agent, which reports everything, is lost.
"""

from __future__ import annotations

from hilnet.controller.checks import check_run
from hilnet.ledger import OBSERVES_ALL, Ledger, Observes
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = """
hilnet: 1
name: judged
clock: {scale: 10, duration: 1m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
  c: {eid: ipn:3.0}
links:
  a-b: {ends: [a, b], medium: ethernet}
  b-c: {ends: [b, c], medium: ethernet}
traffic:
  - {name: t, from: a, to: c, start: 1s, count: 1, size: 100B}
expect: {delivered: all, lost: 0}
"""
KEY = "ipn:1.0/1/0"
# What ION-like stacks report: deliveries and what comes in, not their store or expiry.
BLIND = Observes(frozenset({"received", "delivered"}), stored=False, crash=True, note="no store events")


def _log(b_observes: Observes | None, *trail: dict) -> list[dict]:
    stacks = {
        "a": {"stack": "hilnet", **OBSERVES_ALL.as_record()},
        "c": {"stack": "hilnet", **OBSERVES_ALL.as_record()},
    }
    if b_observes is not None:
        stacks["b"] = {"stack": "blindstack", **b_observes.as_record()}
    start = {
        "src": "controller",
        "event": "run-start",
        "t_ns": 0,
        "nodes": {"a": "ipn:1.0", "b": "ipn:2.0", "c": "ipn:3.0"},
        "stacks": stacks,
    }
    inject = {
        "src": "controller",
        "event": "inject",
        "t_ns": 10**9,
        "tag": "t#1",
        "traffic": "t",
        "frm": "a",
        "to": "c",
        "size": 100,
        "sha256": "x",
        "bundle": KEY,
    }
    end = {"src": "controller", "event": "run-end", "t_ns": 60 * 10**9, "reason": "duration"}
    return [start, inject, *({"src": "agent", "bundle": KEY, **e} for e in trail), end]


A_HANDS_IT_TO_B = (
    {"event": "stored", "t_ns": 10**9 + 1, "node": "a"},
    {"event": "forwarded", "t_ns": 10**9 + 2, "node": "a", "to": "ipn:2.0", "cla": "tcpclv3"},
    {"event": "acked", "t_ns": 10**9 + 3, "node": "a", "by": "ipn:2.0", "cla": "tcpclv3"},
)


def _judge(evs: list[dict]):
    sc = load_scenario_text(SCENARIO)
    rep = check_run(sc, compile_plan(sc), evs)
    return rep, {r.name: r for r in rep.results}


def test_a_bundle_acked_away_to_a_blind_stack_is_not_observable_not_lost() -> None:
    rep, res = _judge(_log(BLIND, *A_HANDS_IT_TO_B))
    (b,) = rep.bundles
    assert b.fate == "not-observable" and b.unobservable_at == ("b",)
    assert res["lost"].passed and res["lost"].actual == "0 (1 not observable for this stack)"
    assert not res["delivered"].passed
    (why,) = res["delivered"].failures
    assert "last acknowledged by the next hop of a at 1s" in why
    assert why.endswith("whether it is still stored at b (blindstack) is not observable for this stack")


def test_the_same_trail_through_hilnets_agent_is_lost() -> None:
    rep, res = _judge(_log(None, *A_HANDS_IT_TO_B))  # b ran hilnet: it would have said "stored"
    assert rep.bundles[0].fate == "lost"
    assert not res["lost"].passed and res["lost"].actual == "1"
    assert "is lost: last acknowledged by the next hop of a at 1s" in res["lost"].failures[0]


def test_a_blind_node_that_was_seen_with_it_is_named() -> None:
    rep, _ = _judge(_log(BLIND, *A_HANDS_IT_TO_B, {"event": "received", "t_ns": 10**9 + 4, "node": "b"}))
    assert rep.bundles[0].unobservable_at == ("b",)


def test_a_blind_source_that_never_reported_it_leaves_its_fate_unobservable() -> None:
    evs = _log(BLIND)
    evs[0]["stacks"]["a"] = {"stack": "blindstack", **BLIND.as_record()}
    rep, res = _judge(evs)
    assert rep.bundles[0].unobservable_at == ("a",)
    assert res["lost"].passed


def test_a_blind_stack_that_delivered_is_just_delivered() -> None:
    trail = (*A_HANDS_IT_TO_B, {"event": "delivered", "t_ns": 2 * 10**9, "node": "c", "sha256": "x"})
    rep, res = _judge(_log(BLIND, *trail))
    assert rep.bundles[0].fate == "delivered" and rep.bundles[0].unobservable_at == ()
    assert res["delivered"].passed and res["lost"].actual == "0"


def test_past_the_blind_node_an_observing_one_accounts_again() -> None:
    trail = (*A_HANDS_IT_TO_B, {"event": "received", "t_ns": 10**9 + 9, "node": "c", "peer": "ipn:2.0"})
    rep, res = _judge(_log(BLIND, *trail))  # c got it and then said nothing: c, which reports all, lost it
    assert rep.bundles[0].fate == "lost"
    assert not res["lost"].passed


def test_a_stack_that_stores_but_cannot_see_expiry_does_not_account() -> None:
    no_expiry = Observes(frozenset({"stored", "acked", "delivered"}), stored=True, crash=False)
    assert not no_expiry.accounts and OBSERVES_ALL.accounts


def test_the_ledger_reads_each_nodes_stack_from_run_start() -> None:
    ledger = Ledger.of(_log(BLIND))
    assert ledger.stacks() == {"a": "hilnet", "c": "hilnet", "b": "blindstack"}
    assert ledger.observes("b") == BLIND
    assert Ledger.of([]).stack_of("x") == "hilnet"  # a run recorded before stacks were named


def test_a_send_from_a_stack_without_per_hop_acks_is_not_called_unacknowledged() -> None:
    # ION's own observability: it stores and expires visibly, and lets a bundle go once its CL is done ("sent").
    ion_like = Observes(
        frozenset({"received", "stored", "sent", "delivered", "expired", "dropped"}), stored=True, crash=True
    )
    evs = _log(
        None,
        {"event": "stored", "t_ns": 10**9 + 1, "node": "a"},
        {"event": "sent", "t_ns": 10**9 + 2, "node": "a", "to": "ipn:2.0", "cla": "tcpclv3"},
    )
    evs[0]["stacks"]["a"] = {"stack": "ion", **ion_like.as_record()}
    rep, res = _judge(evs)
    assert rep.bundles[0].fate == "lost"  # b runs hilnet's agent and never reported it: lost on the way
    (line,) = res["lost"].failures
    assert "last sent by a over TCPCLV3 to b at" in line
    assert "(whether b acknowledged it is not observable for this stack: ion)" in line
    assert "unacknowledged" not in line
