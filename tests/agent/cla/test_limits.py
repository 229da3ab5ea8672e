"""The agent's limits across connections: memory budget, timeouts, connection limit, rate-limited reports.

The TCPCL parts drive the sans-I/O session with plain bytes and explicit times
(ns), as the session tests do; the MTCP and connection-limit parts run the
real listeners on loopback.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from hilnet.agent.cla import tcpcl_messages as m
from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.budget import Holding, MemoryBudget
from hilnet.agent.cla.limits import FD_HEADROOM, LimitHit, Resources, connection_limit
from hilnet.agent.cla.mtcp import MtcpCla, mtcp_head
from hilnet.agent.cla.tcpcl_events import (
    NS_PER_S,
    LimitReached,
    SessionConfig,
    SessionEnded,
    TransferFailed,
    TransferReceived,
)
from hilnet.agent.cla.tcpcl_session import TcpclSession
from hilnet.agent.protocol import Limits
from hilnet.clock import VirtualClock

MiB = 1 << 20


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def drain(s: TcpclSession, now: int = 0) -> bytes:
    out = bytearray()
    while chunks := s.data_to_send(now):
        out += b"".join(bytes(c) for c in chunks)
    return bytes(out)


def receiver(**kw) -> TcpclSession:
    """A passive session that a hand-written peer has brought up (keepalive 0: no idle timeout)."""
    s = TcpclSession(SessionConfig("ipn:2.0", keepalive_s=0, **kw), active=False, now_ns=0)
    s.receive_data(w.encode_contact_header() + w.encode_sess_init(m.SessInit(0, 8 * MiB, 256 * MiB, "ipn:1.0")), 0)
    assert s.established
    drain(s)
    return s


def sender(**kw) -> tuple[TcpclSession, bytes]:
    """An active session up with a hand-written peer; returns it and what it wrote."""
    s = TcpclSession(SessionConfig("ipn:1.0", keepalive_s=0, **kw), active=True, now_ns=0, expected_peer="ipn:2.0")
    drain(s)
    s.receive_data(w.encode_contact_header() + w.encode_sess_init(m.SessInit(0, MiB, 256 * MiB, "ipn:2.0")), 0)
    assert s.established
    return s, drain(s)


# --- memory budget ---------------------------------------------------------------


def test_sessions_share_one_budget_and_a_transfer_past_it_is_refused_no_resources():
    budget = MemoryBudget(3 * MiB)
    a, b = receiver(budget=budget), receiver(budget=budget)
    # a: a transfer that never ends holds 2 MiB
    a.receive_data(w.encode_segment_header(m.SegmentFlag.START, 0, 2 * MiB) + b"x" * (2 * MiB), 0)
    assert budget.used == 2 * MiB
    # b: another 2 MiB would pass the shared 3 MiB: refused before its octets are kept
    ev = b.receive_data(w.encode_segment_header(m.SegmentFlag.START, 0, 2 * MiB) + b"y" * (2 * MiB), 0)
    assert of(ev, LimitReached) and of(ev, LimitReached)[0].limit == "memory"
    assert drain(b) == w.encode_xfer_refuse(m.RefuseReason.NO_RESOURCES, 0)
    assert budget.used == 2 * MiB and not b.closed
    # a's session ends: its partial transfer gives its bytes back, and b's next bundle fits
    a.receive_eof(0)
    assert budget.used == 0
    ev = b.receive_data(w.encode_segment_header(m.SegmentFlag.START | m.SegmentFlag.END, 1, 10) + b"z" * 10, 0)
    assert of(ev, TransferReceived) and budget.used == 0 and budget.peak == 2 * MiB


def test_four_sessions_of_partial_transfers_hold_no_more_than_the_budget():
    budget = MemoryBudget(16 * MiB)
    sessions = [receiver(budget=budget) for _ in range(4)]
    refused = 0
    for s in sessions:
        s.receive_data(w.encode_segment_header(m.SegmentFlag.START, 0, 0), 0)
        for _ in range(8):  # 8 MiB each, 32 MiB offered in all
            ev = s.receive_data(w.encode_segment_header(m.SegmentFlag.NONE, 0, MiB) + b"q" * MiB, 0)
            refused += len(of(ev, LimitReached))
    assert budget.peak <= 14 * MiB and refused == 3  # seven eighths for large transfers; the rest refused once each
    for s in sessions:
        s.receive_eof(0)
    assert budget.used == 0


# --- timeouts ------------------------------------------------------------------------


def test_a_stalled_incoming_transfer_ends_the_session_after_the_partial_timeout():
    s = receiver(partial_timeout_ns=60 * NS_PER_S)
    s.receive_data(w.encode_segment_header(m.SegmentFlag.START, 0, 10) + b"x" * 10, 0)
    s.receive_data(w.encode_segment_header(m.SegmentFlag.NONE, 0, 10) + b"x" * 10, 30 * NS_PER_S)
    s.receive_data(w.encode_segment_header(m.SegmentFlag.NONE, 0, 10) + b"x" * 5, 40 * NS_PER_S)
    assert s.next_deadline_ns() == 90 * NS_PER_S  # the last segment done, not the last octet, counts
    s.receive_data(w.KEEPALIVE_BYTES, 80 * NS_PER_S)
    assert s.handle_timer(89 * NS_PER_S) == [] and not s.closed  # keepalives are no progress, but not yet due
    ev = s.handle_timer(90 * NS_PER_S)
    assert of(ev, LimitReached) == [LimitReached("partial", of(ev, SessionEnded)[0].reason)]
    assert s.closed and "partial transfer timeout" in of(ev, SessionEnded)[0].reason


def test_an_idle_session_between_bundles_is_not_a_partial_transfer():
    s = receiver(partial_timeout_ns=60 * NS_PER_S)
    s.receive_data(w.encode_segment_header(m.SegmentFlag.START | m.SegmentFlag.END, 0, 3) + b"abc", 0)
    s.accept_transfer(0, 0)
    assert s.next_deadline_ns() is None  # keepalive 0 and nothing partial: no timer at all


def test_a_peer_that_never_acknowledges_ends_the_session_after_the_transfer_timeout():
    """Keepalive 0, so only the transfer timeout can notice: the send fails and the agent keeps the bundle."""
    clock = VirtualClock()
    s, _ = sender(transfer_timeout_ns=60 * NS_PER_S)
    clock.advance(10 * NS_PER_S)
    ticket = s.start_transfer(b"b" * (3 * MiB), clock.now_ns())
    drain(s, clock.now_ns())  # all three segments leave
    assert s.next_deadline_ns() == 70 * NS_PER_S
    clock.set(50 * NS_PER_S)
    s.receive_data(w.encode_xfer_ack(m.SegmentFlag.START, 0, MiB), clock.now_ns())  # progress moves it on
    assert s.next_deadline_ns() == 110 * NS_PER_S
    clock.sleep_until_ns(109 * NS_PER_S)
    assert not s.handle_timer(clock.now_ns())
    clock.sleep_until_ns(s.next_deadline_ns())
    ev = s.handle_timer(clock.now_ns())
    assert of(ev, LimitReached)[0].limit == "transfer"
    assert of(ev, TransferFailed) == [TransferFailed(ticket, of(ev, SessionEnded)[0].reason)]
    assert s.closed and clock.now_ns() == 110 * NS_PER_S


def test_without_a_transfer_timeout_an_unacknowledged_transfer_waits_forever():
    s, _ = sender()  # what main did: keepalive 0 and no transfer timeout
    s.start_transfer(b"b" * 10, 0)
    drain(s)
    assert s.next_deadline_ns() is None


# --- reports and the connection limit ----------------------------------------------------


def test_connection_limit_keeps_headroom_below_the_descriptor_limit():
    assert connection_limit(None, 1024) == 1024 - FD_HEADROOM
    assert connection_limit(100, 1024) == 100
    assert connection_limit(5000, 1024) == 1024 - FD_HEADROOM
    assert connection_limit(None, 10) == 1


def test_limit_reports_are_rate_limited_and_say_how_many_were_left_out():
    clock = VirtualClock()
    hits: list[LimitHit] = []
    r = Resources(Limits(max_connections=1), clock, hits.append, nofile=1024)
    assert r.admit("mtcp", "a") and not r.admit("mtcp", "b")
    for _ in range(500):
        r.admit("mtcp", "c")
    clock.advance(NS_PER_S)
    r.admit("mtcp", "d")
    assert [(h.limit, h.suppressed) for h in hits] == [("connections", 0), ("connections", 500)]
    assert r.hits == {"connections": 502}


async def _connect(port: int) -> socket.socket:
    s = socket.socket()
    s.setblocking(False)
    await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    return s


async def _closed_by_peer(s: socket.socket) -> bool:
    """The agent closed ``s``: EOF, or a reset when it closed with our octets unread."""
    try:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(s, 10), 5) == b""
    except ConnectionResetError:
        return True


def test_connections_past_the_limit_are_closed_and_real_peers_still_get_in():
    async def main() -> None:
        hits: list[LimitHit] = []
        resources = Resources(Limits(max_connections=5), None, hits.append, nofile=1024)
        rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0), resources=resources)
        got: list[bytes] = []

        class Sink:
            async def bundle_received(self, data, cla, peer):
                got.append(data)

            def session_changed(self, *a):
                pass

        await rx.start(Sink())
        idle = [await _connect(rx.address[1]) for _ in range(20)]
        await asyncio.sleep(0.2)
        assert resources.connections == 5 and rx.stats["refused_connection_limit"] == 15
        assert hits and hits[0].limit == "connections"
        for s in idle[:5]:
            s.close()
        await asyncio.sleep(0.2)
        real = await _connect(rx.address[1])
        await asyncio.get_running_loop().sock_sendall(real, mtcp_head(5) + b"hello")
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got == [b"hello"]
        for s in idle[5:] + [real]:
            s.close()
        await rx.stop()

    asyncio.run(main())


@pytest.mark.parametrize("partial", [False, True])
def test_mtcp_closes_a_silent_connection_and_gives_its_memory_back(partial):
    async def main() -> None:
        hits: list[LimitHit] = []
        limits = Limits(idle_timeout_ns=NS_PER_S // 5, partial_timeout_ns=NS_PER_S // 5)
        resources = Resources(limits, None, hits.append, nofile=1024)
        rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0), resources=resources)

        class Sink:
            async def bundle_received(self, data, cla, peer):
                pass

            def session_changed(self, *a):
                pass

        await rx.start(Sink())
        s = await _connect(rx.address[1])
        if partial:
            await asyncio.get_running_loop().sock_sendall(s, mtcp_head(1000) + b"p" * 400)
        await asyncio.sleep(0.1)
        assert resources.budget.used == (400 if partial else 0)
        assert await _closed_by_peer(s)
        assert [h.limit for h in hits] == ["partial" if partial else "idle"]
        assert resources.budget.used == 0
        s.close()
        await rx.stop()

    asyncio.run(main())


def test_mtcp_refuses_a_bundle_past_the_memory_budget():
    async def main() -> None:
        hits: list[LimitHit] = []
        resources = Resources(Limits(memory_bytes=MiB), None, hits.append, nofile=1024)
        rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0), resources=resources)

        class Sink:
            async def bundle_received(self, data, cla, peer):
                pass

            def session_changed(self, *a):
                pass

        await rx.start(Sink())
        s = await _connect(rx.address[1])
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(s, mtcp_head(4 * MiB) + b"m" * (2 * MiB))
        except ConnectionError:
            pass
        assert await _closed_by_peer(s)
        assert rx.stats["memory_budget"] == 1 and hits[0].limit == "memory"
        assert resources.budget.peak <= MiB and resources.budget.used == 0
        s.close()
        await rx.stop()

    asyncio.run(main())


def test_a_stalled_holder_is_evicted_for_a_peer_whose_bundles_flow():
    clock = VirtualClock()
    budget = MemoryBudget(8 * MiB, clock)
    evicted: list[str] = []
    stalled = Holding(budget, lambda: evicted.append("stalled"), "10.0.0.9:1")
    other = Holding(budget, lambda: evicted.append("other"), "10.0.0.8:1")
    flowing = Holding(budget, lambda: evicted.append("flowing"), "10.0.0.2:1")
    assert stalled.grow(7 * MiB)
    assert not stalled.grow(MiB)  # a large holding stops at seven eighths: the rest is for small bundles
    clock.advance(NS_PER_S // 2)
    assert other.grow(MiB)  # small: may use the reserved eighth
    assert not flowing.grow(MiB // 2)  # full, and nobody has stalled for a second yet: refused
    clock.advance(NS_PER_S)
    assert flowing.grow(MiB // 2)  # the stalest holder goes; the flowing bundle gets its bytes
    assert evicted == ["stalled"] and stalled.held == 0 and budget.used == MiB + MiB // 2


def test_a_large_request_evicts_only_a_long_stalled_holder():
    clock = VirtualClock()
    budget = MemoryBudget(8 * MiB, clock)
    evicted: list[str] = []
    first = Holding(budget, lambda: evicted.append("first"))
    second = Holding(budget)
    assert first.grow(6 * MiB)
    clock.advance(2 * NS_PER_S)
    assert not second.grow(2 * MiB) and evicted == []  # large transfers do not evict each other at once
    clock.advance(9 * NS_PER_S)
    assert second.grow(2 * MiB) and evicted == ["first"]


def test_resources_report_an_eviction_as_a_memory_limit_event():
    clock = VirtualClock()
    hits: list[LimitHit] = []
    r = Resources(Limits(memory_bytes=8 * MiB), clock, hits.append, nofile=1024)
    closed: list[bool] = []
    assert r.holding(lambda: closed.append(True), "10.0.0.9:4556", "tcpcl").grow(7 * MiB)
    clock.advance(11 * NS_PER_S)
    assert r.holding(None, "ipn:1.0", "tcpcl").grow(2 * MiB)
    assert closed == [True]
    detail = f"closed a stalled connection holding {7 * MiB} bytes"
    assert hits == [LimitHit("tcpcl", "memory", detail, "10.0.0.9:4556")]


def test_serial_reassembly_counts_against_the_agents_budget():
    from hilnet.agent.cla.serial_frame import Data, Refuse, RefuseReason
    from hilnet.agent.cla.serial_recv import Receiver

    budget = MemoryBudget(8 * MiB)
    rx = Receiver(
        max_bundle=64 * MiB, max_partial=16, max_partial_bytes=256 * MiB, ack_every=16, ack_delay_ns=0, budget=budget
    )
    assert rx.on_data(Data(1, 1, 0, 6 * MiB, 1024, b"a" * 1024), 0) is None
    assert budget.used == 6 * MiB  # a serial transfer holds its whole buffer from its first segment
    assert rx.on_data(Data(1, 2, 0, 2 * MiB, 1024, b"b" * 1024), 0) is None
    assert Refuse(1, 2, RefuseReason.STORE_FULL) in rx.replies  # no room: the sender keeps it and retries
    assert rx.stats["refused_memory_budget"] == 1 and budget.used == 6 * MiB
    rx.forget_session(keep_nonce=2)
    assert budget.used == 0


def test_tcpcl_send_to_a_peer_that_never_acknowledges_fails_after_the_transfer_timeout():
    """Keepalive 0 on both sides: before the transfer timeout, send() waited forever."""
    from hilnet.agent.cla.tcpcl import TcpclCla
    from hilnet.errors import ClaError

    async def main() -> None:
        async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(w.encode_contact_header() + w.encode_sess_init(m.SessInit(0, MiB, MiB, "ipn:2.0")))
            while await reader.read(65536):  # takes every octet, acknowledges none
                pass

        server = await asyncio.start_server(silent_peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        hits: list[LimitHit] = []
        resources = Resources(Limits(transfer_timeout_ns=NS_PER_S // 2), None, hits.append, nofile=1024)
        ups: list[bool] = []

        class Sink:
            async def bundle_received(self, data, cla, peer):
                pass

            def session_changed(self, cla, peer, up, detail):
                ups.append(up)

        cla = TcpclCla(
            "ipn:1.0",
            None,
            {"ipn:2.0": ("127.0.0.1", port)},
            keepalive_s=0,
            expedited_session=False,
            resources=resources,
        )
        await cla.start(Sink())
        for _ in range(200):
            if "ipn:2.0" in cla.peers_up():
                break
            await asyncio.sleep(0.01)
        with pytest.raises(ClaError, match="transfer timeout"):
            await asyncio.wait_for(cla.send("ipn:2.0", b"bundle" * 100), 10)
        assert [h.limit for h in hits] == ["transfer"] and ups[:2] == [True, False]
        await cla.stop()
        server.close()

    asyncio.run(main())
