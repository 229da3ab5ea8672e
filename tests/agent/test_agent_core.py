"""The agent core's invariants, driven in-process on a virtual clock with fake CLAs.

Each test states one invariant of DESIGN.md "Agent" and tries to break it: a
bundle leaves the store only when delivered, acknowledged or expired (the
store's deletion journal says which); the application sees a bundle id at
most once; a full store refuses and the sender keeps its copy; routing waits
for a contact; malformed input is counted and rejected, never a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time

import pytest
from agent_test_fakes import MS, Node, PairCla, S, connect

from hilnet.agent import protocol as ev
from hilnet.agent.config import AgentConfig
from hilnet.agent.intake import bundle_key
from hilnet.bundle.blocks import (
    bundle_age_ms,
    dtn_ms_from_unix_ns,
    hop_count,
    previous_node,
    set_bundle_age,
    set_hop_count,
    set_previous_node,
)
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.eid import parse_eid
from hilnet.bundle.make import make_bundle
from hilnet.clock import VirtualClock
from hilnet.errors import StoreFullError
from hilnet.scenario.contact import Contact

T0 = 1_000 * S  # virtual clock start: any value, only differences matter
REAL0 = time.time_ns() - T0  # DTN time = REAL0 + virtual clock: "now" at the start


def cfg(tmp_path, node="b", eid="ipn:2.0", **kw) -> AgentConfig:
    return AgentConfig(node=node, eid=eid, store_path=str(tmp_path / f"{node}.sqlite"), **kw)


def bundle(
    src="ipn:1.0",
    dest="ipn:3.1",
    payload=b"hello",
    lifetime_ms=3_600_000,
    seq=0,
    clock: VirtualClock | None = None,
    hop_limit=None,
):
    now_ms = dtn_ms_from_unix_ns(REAL0 + (clock.now_ns() if clock else T0))
    return make_bundle(src, dest, payload, lifetime_ms, creation_ms=now_ms, seq=seq, hop_limit=hop_limit)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def node(tmp_path, clock=None, fake=True, **kw) -> Node:
    n = Node(clock or VirtualClock(T0), REAL0)
    return await n.configure(cfg(tmp_path, **kw), fake=fake)


# -- leaving the store ------------------------------------------------------------------


def test_bundle_leaves_store_only_when_next_hop_acked(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        a, cla = n.agent, n.cla
        try:
            b = bundle()
            key = bundle_key(b.id)
            await a.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            assert a.store.contains(key)
            await n.idle()
            assert cla.sent == [] and a.store.contains(key)  # no session: nothing sent, kept

            cla.mode = "fail"
            cla.up("ipn:3.0")
            await n.until(lambda: len(cla.sent) >= 2, step_ns=100 * MS)  # failed, retried later
            assert a.store.contains(key) and n.journal() == []
            assert a.counters["send-failed"] >= 1

            cla.mode = "refuse"
            start = len(cla.sent)
            await n.until(lambda: len(cla.sent) >= start + 2, step_ns=100 * MS)
            assert a.store.contains(key) and n.journal() == []

            cla.mode = "hold"  # in flight: still stored until the ack
            start = len(cla.sent)
            await n.until(lambda: len(cla.sent) > start, step_ns=100 * MS)
            await n.idle()
            assert a.store.contains(key) and n.journal() == []
            assert a.status()["inflight"] == 1
            cla.release("ack")
            # the acked event follows the durable delete, on the loop: wait for both
            await n.until(lambda: not a.store.contains(key) and bool(n.of(ev.Acked)))
            assert n.journal() == [(key, "acked by ipn:3.0")]
            assert [(e.bundle, e.by) for e in n.of(ev.Acked)] == [(key, "ipn:3.0")]
            assert cla.acked[-1][0] == "ipn:3.0"
            assert decode_bundle(cla.acked[-1][1]).payload == b"hello"
        finally:
            await a.stop()

    run(main())


def test_bundle_in_flight_survives_an_agent_stop(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        n.cla.mode = "hold"
        n.cla.up("ipn:3.0")
        b = bundle()
        await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
        await n.until(lambda: n.cla.sent)
        await n.agent.stop()  # the send is cancelled before any ack

        again = await node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            assert again.agent.store.contains(bundle_key(b.id))
            assert again.journal() == []
        finally:
            await again.agent.stop()

    run(main())


def test_local_delivery_waits_for_an_application_and_is_journalled(tmp_path):
    async def main():
        n = await node(tmp_path)
        a = n.agent
        try:
            b = bundle(dest="ipn:2.7", payload=b"for service 7")
            key = bundle_key(b.id)
            await a.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            assert a.store.contains(key) and n.of(ev.Delivered) == []  # nobody listens on 2.7 yet

            got = []
            a.subscribe("ipn:2.7", lambda k, p: got.append((k, p)))
            await n.until(lambda: got)
            assert got == [(key, b"for service 7")]
            assert not a.store.contains(key)
            assert n.journal() == [(key, "delivered")]
            d = n.of(ev.Delivered)
            assert len(d) == 1 and d[0].sha256 == hashlib.sha256(b"for service 7").hexdigest()
        finally:
            await a.stop()

    run(main())


def test_expired_bundle_leaves_with_an_event(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        n = await node(tmp_path, clock=clock)  # no route: the bundle can only wait
        a = n.agent
        try:
            short = bundle(lifetime_ms=2_000, clock=clock)
            long = bundle(lifetime_ms=3_600_000, seq=1, clock=clock)
            for b in (short, long):
                await a.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            assert a.store.count() == 2 and n.of(ev.Expired) == []
            clock.advance(2 * S)
            await n.until(lambda: n.of(ev.Expired))
            assert [e.bundle for e in n.of(ev.Expired)] == [bundle_key(short.id)]
            assert n.journal() == [(bundle_key(short.id), "expired")]
            assert a.store.contains(bundle_key(long.id))
        finally:
            await a.stop()

    run(main())


def test_bundle_already_expired_on_arrival_is_not_stored(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        n = await node(tmp_path, clock=clock)
        try:
            b = bundle(lifetime_ms=1_000, clock=clock)
            clock.advance(5 * S)
            await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            assert n.agent.store.count() == 0
            assert [e.bundle for e in n.of(ev.Expired)] == [bundle_key(b.id)]
        finally:
            await n.agent.stop()

    run(main())


def test_clockless_bundle_expires_by_its_age_not_at_dtn_epoch(tmp_path):
    """Creation time 0 + Bundle Age (RFC 9171 4.2.7): lifetime left = lifetime - age, from arrival."""

    async def main():
        clock = VirtualClock(T0)
        n = await node(tmp_path, clock=clock)
        try:
            b = set_bundle_age(make_bundle("ipn:1.0", "ipn:3.1", b"no clock", 3_000, seq=4), 1_000)
            assert b.primary.creation_ms == 0
            await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            assert n.agent.store.count() == 1 and n.of(ev.Expired) == []
            clock.advance(1_900 * MS)
            await n.idle()
            assert n.of(ev.Expired) == []
            clock.advance(200 * MS)  # 1 s of age + 2.1 s here > 3 s of lifetime
            await n.until(lambda: n.of(ev.Expired))
            assert n.journal() == [(bundle_key(b.id), "expired")]
        finally:
            await n.agent.stop()

    run(main())


# -- at most once -----------------------------------------------------------------------


def test_application_sees_a_bundle_once_when_it_arrives_twice(tmp_path):
    async def main():
        n = await node(tmp_path)
        got = []
        n.agent.subscribe("ipn:2.1", lambda k, p: got.append(k))
        data = encode_bundle(bundle(dest="ipn:2.1"))
        for _ in range(3):  # the previous hop never saw our ack and sent it again
            await n.agent.bundle_received(data, "fake", "ipn:1.0")
        await n.idle()
        assert len(got) == 1 and len(n.of(ev.Delivered)) == 1
        assert n.agent.counters["duplicate"] == 2
        assert sum("duplicate" in e.reason for e in n.of(ev.Dropped)) == 2
        await n.agent.stop()

        # after a restart the journal still remembers what was delivered
        again = await node(tmp_path)
        got2 = []
        again.agent.subscribe("ipn:2.1", lambda k, p: got2.append(k))
        await again.agent.bundle_received(data, "fake", "ipn:1.0")
        await again.idle()
        assert got2 == [] and again.of(ev.Delivered) == [] and again.agent.store.count() == 0
        await again.agent.stop()

    run(main())


def test_bundle_arriving_twice_while_stored_is_kept_once(tmp_path):
    async def main():
        n = await node(tmp_path)  # no route: stays stored
        data = encode_bundle(bundle())
        await n.agent.bundle_received(data, "fake", "ipn:1.0")
        await n.agent.bundle_received(data, "fake", "ipn:1.0")
        assert n.agent.store.count() == 1 and len(n.of(ev.Stored)) == 1
        assert n.agent.counters["duplicate"] == 1
        await n.agent.stop()

    run(main())


# -- forwarding -------------------------------------------------------------------------


def test_forward_increments_hop_count_and_sets_previous_node(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"ipn:3.0": "ipn:3.0"})
        n.cla.up("ipn:3.0")
        b = set_previous_node(set_hop_count(bundle(), 5, 2), parse_eid("ipn:9.0"))
        await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:9.0")
        await n.until(lambda: n.cla.acked)
        peer, data = n.cla.acked[0]
        out = decode_bundle(data)
        assert peer == "ipn:3.0"
        assert (hop_count(out).limit, hop_count(out).count) == (5, 3)
        assert str(previous_node(out)) == "ipn:2.0"
        assert out.payload == b.payload and out.id == b.id
        await n.agent.stop()

    run(main())


def test_forward_adds_the_time_held_here_to_bundle_age(tmp_path):
    """RFC 9171 5.4 step 4: a clockless bundle's age grows by its residence time at each hop."""

    async def main():
        clock = VirtualClock(T0)
        n = await node(tmp_path, clock=clock, routes={"ipn:3.0": "ipn:3.0"})
        try:
            b = set_bundle_age(make_bundle("ipn:1.0", "ipn:3.1", b"no clock", 60_000, seq=1), 1_000)
            await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            clock.advance(2_500 * MS)  # held 2.5 s waiting for the next hop's session
            n.cla.up("ipn:3.0")
            await n.until(lambda: n.cla.acked)
            out = decode_bundle(n.cla.acked[0][1])
            assert bundle_age_ms(out) == 3_500
            assert out.payload == b.payload and out.id == b.id
        finally:
            await n.agent.stop()

    run(main())


def test_hop_limit_exceeded_is_dropped_with_an_event(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        n.cla.up("ipn:3.0")
        b = set_hop_count(bundle(), 3, 3)  # one more hop would be the fourth of three
        await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
        await n.idle()
        drops = n.of(ev.Dropped)
        assert [d.bundle for d in drops] == [bundle_key(b.id)] and "hop limit" in drops[0].reason
        assert n.agent.store.count() == 0 and n.cla.sent == []
        await n.agent.stop()

    run(main())


def test_routing_waits_for_the_contact_then_sends(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        contacts = (Contact("b", "c", 10 * S, 20 * S, 1_000_000, 5 * MS),)
        n = await node(
            tmp_path,
            clock=clock,
            contacts=contacts,
            epoch_ns=T0,
            nodes={"a": "ipn:1.0", "b": "ipn:2.0", "c": "ipn:3.0"},
        )
        n.cla.up("ipn:3.0")  # a session exists, but the plan says the link is not up yet
        try:
            b = bundle(clock=clock)
            await n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0")
            await n.idle()
            clock.advance(9 * S)
            await n.idle()
            assert n.cla.sent == [] and n.agent.store.count() == 1
            clock.advance(1 * S)  # the contact opens
            await n.until(lambda: n.of(ev.Acked))  # the delete is batched: durable by this event
            assert n.cla.acked[0][0] == "ipn:3.0" and n.agent.store.count() == 0
            f = n.of(ev.Forwarded)
            assert len(f) == 1 and f[0].t_ns >= T0 + 10 * S
        finally:
            await n.agent.stop()

    run(main())


def test_bundles_routed_together_book_the_contact_volume_between_them(tmp_path):
    """Two big bundles cannot both fit a 10 KB contact; the small one behind them can."""

    async def main():
        clock = VirtualClock(T0)
        contacts = (
            Contact("b", "c", 0, 10 * S, 1_000, 5 * MS),  # 10,000 bytes of volume
            Contact("b", "c", 60 * S, 70 * S, 1_000, 5 * MS),
        )
        n = await node(
            tmp_path,
            clock=clock,
            contacts=contacts,
            epoch_ns=T0,
            nodes={"a": "ipn:1.0", "b": "ipn:2.0", "c": "ipn:3.0"},
        )
        n.cla.mode = "hold"  # transfers stay in flight: only routing decides what is sent
        n.cla.up("ipn:3.0")
        try:
            big1, big2 = (bundle(payload=bytes(5_000), seq=i, clock=clock) for i in (1, 2))
            small = bundle(payload=b"tweet", seq=3, clock=clock)
            await asyncio.gather(
                *(n.agent.bundle_received(encode_bundle(b), "fake", "ipn:1.0") for b in (big1, big2, small))
            )
            await n.until(lambda: len(n.cla.sent) >= 2)
            await n.idle()
            sent = {decode_bundle(data).id for _, data in n.cla.sent}
            assert sent == {big1.id, small.id}  # big2 waits for the second contact
        finally:
            await n.agent.stop()

    run(main())


def test_static_route_waits_for_a_session(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            await n.agent.bundle_received(encode_bundle(bundle()), "fake", "ipn:1.0")
            await n.idle()
            assert n.cla.sent == []
            n.cla.up("ipn:3.0")
            await n.until(lambda: n.of(ev.Acked))  # the delete is batched: durable by this event
            assert n.agent.store.count() == 0
        finally:
            await n.agent.stop()

    run(main())


def test_a_refusing_next_hop_is_retried_later_not_in_a_loop(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        n = await node(tmp_path, clock=clock, routes={"*": "ipn:3.0"})
        try:
            n.cla.mode = "refuse"
            n.cla.up("ipn:3.0")
            await n.agent.bundle_received(encode_bundle(bundle(clock=clock)), "fake", "ipn:1.0")
            await n.until(lambda: n.cla.sent)
            await n.idle(50)  # 100 ms of real time, no agent time: no new attempt is due
            assert len(n.cla.sent) == 1
            clock.advance(600 * MS)  # past the recheck interval
            await n.until(lambda: len(n.cla.sent) == 2)
            n.cla.mode = "ack"
            n.cla.up("ipn:3.0")  # a session change is a reason to try again at once
            await n.until(lambda: n.of(ev.Acked))  # the delete is batched: durable by this event
            assert n.agent.store.count() == 0
        finally:
            await n.agent.stop()

    run(main())


# -- a full store -----------------------------------------------------------------------


def test_full_store_refuses_and_the_sender_keeps_its_copy(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        sender = await node(tmp_path, clock=clock, node="a", eid="ipn:1.0", fake=False, routes={"*": "ipn:2.0"})
        receiver = await node(
            tmp_path, clock=clock, node="b", eid="ipn:2.0", fake=False, quota_bundles=1
        )  # no route onwards: what it takes, it keeps
        try:
            # the quota alone, straight into bundle_received
            first = bundle(seq=100)
            await receiver.agent.bundle_received(encode_bundle(first), "x", "ipn:9.0")
            with pytest.raises(StoreFullError):
                await receiver.agent.bundle_received(encode_bundle(bundle(seq=101)), "x", "ipn:9.0")
            assert receiver.agent.store.count() == 1 and len(receiver.of(ev.Refused)) == 1

            # and through a link: the sender retries but never lets go
            connect(sender.agent, PairCla("pair", "ipn:1.0"), receiver.agent, PairCla("pair", "ipn:2.0"))
            key = await sender.agent.submit("ipn:3.1", b"refused", 3600 * S)
            await sender.until(lambda: len(receiver.of(ev.Refused)) >= 3, step_ns=100 * MS)
            assert sender.agent.store.contains(key) and sender.journal() == []
            assert receiver.agent.store.count() == 1

            # room again: the bundle moves, exactly once
            receiver.agent.store.delete(bundle_key(first.id), "test: make room")
            await sender.until(lambda: not sender.agent.store.contains(key), step_ns=100 * MS)
            assert receiver.agent.store.contains(key)
            assert sender.journal() == [(key, "acked by ipn:2.0")]
        finally:
            await sender.agent.stop()
            await receiver.agent.stop()

    run(main())


# -- bad input --------------------------------------------------------------------------


def test_malformed_bundles_are_rejected_counted_and_harmless(tmp_path):
    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        a = n.agent
        try:
            good = encode_bundle(bundle(payload=bytes(range(256)) * 4))
            rng = random.Random(7)
            bad = [
                b"",
                b"\x00",
                b"garbage",
                good[:-1],
                good[: len(good) // 2],
                good + b"\x00",
                b"\x80" + good[1:],
                good[:1] + b"\x86" + good[2:],
                rng.randbytes(500),
            ]
            for _ in range(200):  # flip one to three bytes: the CRC32C catches every one of these
                m = bytearray(good)
                for _ in range(rng.randint(1, 3)):
                    m[rng.randrange(len(m))] ^= 1 << rng.randrange(8)
                bad.append(bytes(m))
            for data in bad:
                await a.bundle_received(data, "fake", "ipn:1.0")
            rejected = n.of(ev.Rejected)
            assert len(rejected) == len(bad) and all(r.reason for r in rejected)
            assert sum(v for k, v in a.counters.items() if k.startswith("rejected:")) == len(bad)
            assert a.store.count() == 0 and n.journal() == []
            # still a working node
            await a.bundle_received(good, "fake", "ipn:1.0")
            n.cla.up("ipn:3.0")
            await n.until(lambda: n.cla.acked)
        finally:
            await a.stop()

    run(main())


@pytest.mark.parametrize("dest", ["dtn:none", "dtn://elsewhere/app", "ipn:4.1"])
def test_odd_but_valid_bundles_never_stop_forwarding(tmp_path, dest):
    """A bundle the router cannot place must not block the bundles behind it."""

    async def main():
        n = await node(tmp_path, routes={"ipn:3.0": "ipn:3.0"})
        a = n.agent
        try:
            odd = bundle(dest=dest, seq=1)
            try:
                await a.bundle_received(encode_bundle(odd), "fake", "ipn:1.0")
            except Exception as e:  # noqa: BLE001 - any escape is the failure under test
                pytest.fail(f"bundle_received raised {type(e).__name__}: {e}")
            n.cla.up("ipn:3.0")
            fine = bundle(dest="ipn:3.1", seq=2)
            await a.bundle_received(encode_bundle(fine), "fake", "ipn:1.0")
            await n.until(lambda: any(decode_bundle(d).id == fine.id for _, d in n.cla.acked))
            assert not [e for e in n.of(ev.Log) if e.level == "error"]
        finally:
            await a.stop()

    run(main())
