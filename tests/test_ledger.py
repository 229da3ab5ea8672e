"""The ledger: one account of who holds which bundle, folded one record at a time or from a whole log."""

from __future__ import annotations

from hilnet.ledger import Delivery, Ledger, Sighting

KEY = "ipn:1.0/100/0"


def inject(t: int, tag: str, key: str | None = KEY) -> dict[str, object]:
    rec: dict[str, object] = {"t_ns": t, "src": "controller", "event": "inject" if key else "inject-failed"}
    rec |= {"tag": tag, "traffic": tag.split("#")[0], "frm": "a", "to": "c", "size": 100, "sha256": "ab"}
    return rec | ({"bundle": key} if key else {"reason": "store full"})


def agent(t: int, node: str, kind: str, key: str = KEY, **extra: object) -> dict[str, object]:
    return {"t_ns": t, "src": "agent", "event": kind, "node": node, "bundle": key, **extra}


LOG = [
    inject(10, "p#1"),
    agent(11, "a", "stored"),
    agent(12, "a", "forwarded", to="b"),
    agent(13, "b", "received"),
    agent(14, "b", "stored"),
    agent(15, "a", "acked", by="b"),
    agent(20, "b", "forwarded", to="c"),
    agent(21, "c", "delivered", sha256="ab"),
    {"t_ns": 30, "src": "link", "event": "drop", "link": "b-c"},
]


def test_follows_one_bundle_hop_by_hop() -> None:
    ledger = Ledger.of(LOG)
    assert ledger.holders(KEY) == ("b",)  # delivered at c, but b has no ack yet
    assert (ledger.held_by("a"), ledger.held_by("b"), ledger.held_by("c")) == (0, 1, 0)
    assert ledger.deliveries(KEY) == (Delivery("c", 21, "ab"),)
    assert [s.event for s in ledger.sightings(KEY)] == [
        "stored",
        "forwarded",
        "received",
        "stored",
        "acked",
        "forwarded",
        "delivered",
    ]
    assert ledger.sightings(KEY)[0] == Sighting("a", "stored", 11)
    made = ledger.injection_of(KEY)
    assert made is not None and made.tag == "p#1"
    assert (ledger.injected(), ledger.delivered(), ledger.end_ns) == (1, 1, 30)


def test_one_record_at_a_time_is_the_whole_log() -> None:
    live = Ledger()
    for r in LOG:
        live.fold(r)
    batch = Ledger.of(LOG)
    assert live.injections() == batch.injections()
    assert (live.holders(KEY), live.deliveries(KEY), live.sightings(KEY)) == (
        batch.holders(KEY),
        batch.deliveries(KEY),
        batch.sightings(KEY),
    )


def test_settled_needs_every_bundle_injected_delivered_and_released() -> None:
    ledger = Ledger.of(LOG)
    assert not ledger.settled(1)  # b still holds its copy
    ledger.fold(agent(22, "b", "acked", by="c"))
    assert ledger.settled(1)
    assert not ledger.settled(2)  # one bundle of the traffic is still to come


def test_expired_settles_and_a_failed_injection_does_not_count() -> None:
    ledger = Ledger.of([inject(1, "p#1"), agent(2, "a", "stored"), agent(9, "a", "expired"), inject(3, "p#2", None)])
    assert ledger.expired(KEY) and ledger.holders(KEY) == ()
    assert [i.key for i in ledger.injections()] == [KEY, None]
    assert ledger.injected() == 1 and ledger.settled(1) and not ledger.settled(2)


def test_records_of_the_wrong_shape_are_ignored() -> None:
    ledger = Ledger.of(
        [
            {"src": "agent", "event": "stored"},
            {"t_ns": "x", "src": "agent", "event": "stored", "bundle": 7},
            {"t_ns": 5, "src": "controller", "event": "inject"},
            {"t_ns": 6, "src": "controller", "event": "run-end", "reason": "settled"},
        ]
    )
    assert ledger.injections() == () and ledger.end_reason == "settled" and ledger.end_ns == 6


def test_a_bundle_its_destination_dropped_for_bpsec_settles() -> None:
    ledger = Ledger.of([inject(1, "p#1"), agent(2, "a", "stored"), agent(3, "a", "forwarded", to="c")])
    ledger.fold(agent(4, "c", "security-failed", source="ipn:1.0", check="bib-mismatch", reason="..."))
    assert not ledger.settled(1)  # a still holds its copy until c's ack reaches it
    ledger.fold(agent(5, "a", "acked", by="c"))
    assert ledger.settled(1) and ledger.sightings(KEY)[-2] == Sighting("c", "security-failed", 4)
