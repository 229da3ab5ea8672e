"""Classes of service at a node: the router books volume per class, the forwarder queues per class.

The router part is pure. The agent part runs a real Agent (store, forwarder) on a
VirtualClock with a fake CLA, as tests/agent/test_agent_core.py does: the class is read
from each bundle's type-193 block, relays included, and handed to the CLA as a rank.
"""

from __future__ import annotations

import asyncio

from agent_test_fakes import Node, PairCla, S, connect
from test_agent_core import REAL0, T0, bundle, cfg, run

from hilnet.agent.intake import bundle_key
from hilnet.agent.router import Router
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.cos import ClassOfService, Priority, class_of_service, rank_of, set_class_of_service
from hilnet.clock import VirtualClock
from hilnet.scenario.contact import Contact

BULK, STANDARD, EXPEDITED = 0, 1, 2


def C(frm, to, start_s, end_s, rate):
    return Contact(frm, to, int(start_s * S), int(end_s * S), rate, 0)


# -- the router books volume as ION's CGR does ------------------------------------------


def test_bulk_is_not_routed_into_volume_promised_to_higher_classes():
    first, second = C("a", "b", 0, 10, 1_000), C("a", "b", 100, 110, 1_000)  # 10,000 bytes each
    router = Router("a", [first, second])
    exp = router.route("b", 0, 6_000, 10**4 * S, priority=EXPEDITED)
    router.book(exp.route, 6_000, EXPEDITED)
    # 6,000 of 10,000 promised to expedited: a 6,000-byte bulk bundle goes to the next window ...
    bulk = router.route("b", 0, 6_000, 10**4 * S, priority=BULK)
    assert bulk.route.hops == (second,)
    # ... a 4,000-byte standard one still fits behind the expedited bytes
    std = router.route("b", 0, 4_000, 10**4 * S, priority=STANDARD)
    assert std.route.hops == (first,) and std.arrival_ns == 10 * S
    assert router.booked(first) == 6_000 == router.booked(first, EXPEDITED)


def test_expedited_sees_only_expedited_bookings():
    first, second = C("a", "b", 0, 10, 1_000), C("a", "b", 100, 110, 1_000)
    router = Router("a", [first, second])
    for _ in range(2):  # 8,000 bytes of bulk fill most of the first window
        router.book(router.route("b", 0, 4_000, 10**4 * S, priority=BULK).route, 4_000, BULK)
    assert router.route("b", 0, 4_000, 10**4 * S, priority=BULK).route.hops == (second,)
    exp = router.route("b", 0, 4_000, 10**4 * S, priority=EXPEDITED)
    assert exp.route.hops == (first,) and exp.arrival_ns == 4 * S  # goes first, as it is sent
    router.book(exp.route, 4_000, EXPEDITED)
    assert router.booked(first, BULK) == 12_000 and router.booked(first, STANDARD) == 4_000
    router.release(exp.route, 4_000, EXPEDITED)
    assert router.booked(first, EXPEDITED) == 0 and router.booked(first, BULK) == 8_000


# -- the agent ------------------------------------------------------------------------


async def _node(tmp_path, **kw) -> Node:
    n = Node(VirtualClock(T0), REAL0)
    return await n.configure(cfg(tmp_path, **kw))


def _with_class(b, priority, ordinal=0):
    return set_class_of_service(b, ClassOfService(priority, ordinal))


def test_a_relay_sends_by_the_class_in_each_bundles_block(tmp_path):
    async def main():
        n = await _node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            arriving = [
                _with_class(bundle(seq=1), Priority.BULK),
                bundle(seq=2),  # no block: standard
                _with_class(bundle(seq=3), Priority.EXPEDITED, 3),
                _with_class(bundle(seq=4), Priority.EXPEDITED, 200),
                _with_class(bundle(seq=5), Priority.BULK),
            ]
            for b in arriving:  # stored while there is no session: nothing goes yet
                await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            assert n.cla.sent == []
            n.cla.up("ipn:3.0")
            await n.until(lambda: len(n.cla.acked) == 5)
            order = [decode_bundle(d).primary.sequence for _, d in n.cla.sent]
            assert order == [4, 3, 2, 1, 5]  # expedited by ordinal, standard, then bulk by arrival
            assert n.cla.ranks == [rank_of(2, 200), rank_of(2, 3), rank_of(1), rank_of(0), rank_of(0)]
            # forwarded unchanged: the block is still there, with the class it came with
            assert [class_of_service(decode_bundle(d)).priority for _, d in n.cla.sent][:2] == [Priority.EXPEDITED] * 2
        finally:
            await n.agent.stop()

    run(main())


def test_submitted_bundles_carry_their_class_to_the_next_node(tmp_path):
    async def main():
        a = await Node(VirtualClock(T0), REAL0).configure(
            cfg(tmp_path, node="a", eid="ipn:1.0", routes={"*": "ipn:2.0"}), fake=False
        )
        b = await Node(VirtualClock(T0), REAL0).configure(
            cfg(tmp_path, node="b", eid="ipn:2.0", routes={"*": "ipn:3.0"})
        )
        connect(a.agent, PairCla("pair", "ipn:1.0"), b.agent, PairCla("pair", "ipn:2.0"))
        out = b.cla
        try:
            key = await a.agent.submit("ipn:3.1", b"tweet", 3600 * S, cos=ClassOfService(Priority.EXPEDITED, 9))
            await b.until(lambda: b.agent.store.contains(key))
            (stored,) = [sb for sb in b.agent.store.list() if sb.key == key]
            assert stored.priority == rank_of(Priority.EXPEDITED, 9)  # read from the block at the relay
            out.up("ipn:3.0")
            await b.until(lambda: out.acked)
            got = decode_bundle(out.acked[0][1])
            assert class_of_service(got) == ClassOfService(Priority.EXPEDITED, 9)
            assert out.ranks == [rank_of(Priority.EXPEDITED, 9)] and bundle_key(got.id) == key
        finally:
            await asyncio.gather(a.agent.stop(), b.agent.stop())

    run(main())
