"""Two TcpclCla over real loopback sockets (integration: real time, small keepalives)."""

from __future__ import annotations

import asyncio
import functools
import os

import pytest

from hilnet.agent.cla import tcpcl_messages as m
from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError


class Sink:
    def __init__(self):
        self.bundles: list[tuple[str | None, bytes]] = []
        self.changes: list[tuple[str, bool, dict]] = []
        self.full = False
        self.delay_s = 0.0
        self.tls: list[str] = []

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.full:
            raise StoreFullError("quota reached")
        self.bundles.append((peer, data))

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        self.changes.append((peer, up, detail))

    def tls_failed(self, cla: str, reason: str, peer: str | None, certified: str | None, address: str) -> None:
        self.tls.append(reason)


def run_async(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        asyncio.run(asyncio.wait_for(fn(*a, **kw), timeout=60))

    return wrapper


async def until(cond, timeout: float = 10.0, what: str = "condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def make_pair(ka: int = 5, **kw):
    """A listens; B connects to A. Returns (a, sink_a, b, sink_b) with the session up."""
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=ka, **kw)
    sa = Sink()
    await a.start(sa)
    b = TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": a.address}, keepalive_s=ka, **kw)
    sb = Sink()
    await b.start(sb)
    await until(lambda: b.peers_up() == {"ipn:1.0"} and a.peers_up() == {"ipn:2.0"}, what="session up")
    return a, sa, b, sb


@run_async
async def test_bundles_both_ways_over_one_session():
    a, sa, b, sb = await make_pair()
    try:
        await b.send("ipn:1.0", b"to a")
        await a.send("ipn:2.0", b"to b")  # over the session B opened
        assert sa.bundles == [("ipn:2.0", b"to a")]
        assert sb.bundles == [("ipn:1.0", b"to b")]
        assert a.stats["bundles_received"] == 1 and b.stats["bundles_sent"] == 1
        up = [c for c in sb.changes if c[1]]
        assert up[0][0] == "ipn:1.0" and up[0][2]["tls"] is False
    finally:
        await b.stop()
        await a.stop()
    await until(lambda: any(not up for _, up, _ in sa.changes), what="session down at a")
    assert a.stats["sessions_ended_clean"] == 2  # the connector kept a bulk and an expedited session


@run_async
async def test_big_bundle_is_segmented_and_arrives_intact():
    a, sa, b, sb = await make_pair(max_segment=64 * 1024)
    try:
        data = os.urandom(5 * 1024 * 1024 + 123)
        await b.send("ipn:1.0", data)
        assert sa.bundles[0][1] == data
    finally:
        await b.stop()
        await a.stop()


@run_async
async def test_concurrent_sends_share_the_session_and_all_arrive():
    a, sa, b, sb = await make_pair(max_segment=10_000)
    try:
        payloads = [os.urandom(1000 * (i + 1)) for i in range(20)]
        await asyncio.gather(*(b.send("ipn:1.0", p) for p in payloads))
        assert sorted(d for _, d in sa.bundles) == sorted(payloads)
        assert len(sa.bundles) == 20  # none twice
    finally:
        await b.stop()
        await a.stop()


@run_async
async def test_store_full_refuses_and_the_sender_keeps_it():
    a, sa, b, sb = await make_pair()
    try:
        sa.full = True
        with pytest.raises(TransferRefusedError, match="no_resources"):
            await b.send("ipn:1.0", b"no room")
        assert a.stats["refused_store_full"] == 1
        sa.full = False
        await b.send("ipn:1.0", b"room now")  # the session is still good
        assert sa.bundles == [("ipn:2.0", b"room now")]
    finally:
        await b.stop()
        await a.stop()


@run_async
async def test_send_without_session_raises():
    a = TcpclCla("ipn:1.0", listen=None)
    await a.start(Sink())
    with pytest.raises(ClaError, match="no TCPCL session"):
        await a.send("ipn:9.0", b"x")
    await a.stop()


class StallingRelay:
    """A TCP relay that can stop moving bytes, as the emulator does during an outage."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.stalled = False
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _pipe(self, r: asyncio.StreamReader, wr: asyncio.StreamWriter):
        try:
            while data := await r.read(65536):
                while self.stalled:
                    await asyncio.sleep(0.01)
                wr.write(data)
                await wr.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            wr.close()

    async def _handle(self, r, wr):
        self.tasks.append(asyncio.current_task())
        try:
            tr, tw = await asyncio.open_connection(*self.target)
        except OSError:
            wr.close()
            return
        self.writers += [wr, tw]
        await asyncio.gather(self._pipe(r, tw), self._pipe(tr, wr))

    async def stop(self):
        self.server.close()
        for wr in self.writers:
            wr.transport.abort()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@run_async
async def test_keepalive_expiry_when_the_link_stalls_then_reconnect():
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=1)
    sa = Sink()
    await a.start(sa)
    relay = StallingRelay(a.address)
    addr = await relay.start()
    b = TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": addr}, keepalive_s=1, reconnect_min_s=0.1)
    sb = Sink()
    await b.start(sb)
    try:
        await until(lambda: b.peers_up() == {"ipn:1.0"}, what="session up")
        relay.stalled = True
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await until(lambda: not b.peers_up() and not a.peers_up(), timeout=6, what="idle timeout")
        assert 1.5 < loop.time() - t0 < 4.5  # 2 x keepalive, not TCP's minutes
        downs = [d for _, up, d in sb.changes if not up]
        assert "idle timeout" in downs[0]["reason"]
        relay.stalled = False  # the link comes back: B reconnects on its own
        await until(lambda: b.peers_up() == {"ipn:1.0"}, timeout=10, what="reconnect")
        await b.send("ipn:1.0", b"after the outage")
        assert sa.bundles[-1] == ("ipn:2.0", b"after the outage")
    finally:
        await b.stop()
        await a.stop()
        await relay.stop()


@run_async
async def test_send_in_flight_fails_when_the_session_dies():
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=1)
    sa = Sink()
    await a.start(sa)
    relay = StallingRelay(a.address)
    addr = await relay.start()
    b = TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": addr}, keepalive_s=1)
    await b.start(Sink())
    try:
        await until(lambda: b.peers_up() == {"ipn:1.0"}, what="session up")
        relay.stalled = True
        with pytest.raises(ClaError, match="idle timeout"):
            await b.send("ipn:1.0", os.urandom(8 * 1024 * 1024))
        assert sa.bundles == []  # the partial transfer never reached the agent
    finally:
        await b.stop()
        await a.stop()
        await relay.stop()


@run_async
async def test_reconnects_after_the_listener_restarts():
    a, sa, b, sb = await make_pair()
    port = a.address[1]
    b.reconnect_min_ns = 50_000_000
    await a.stop()
    await until(lambda: not b.peers_up(), what="session down")
    a2 = TcpclCla("ipn:1.0", listen=("127.0.0.1", port), keepalive_s=5)
    sa2 = Sink()
    await a2.start(sa2)
    try:
        await until(lambda: b.peers_up() == {"ipn:1.0"}, timeout=15, what="reconnect")
        await b.send("ipn:1.0", b"hello again")
        assert sa2.bundles == [("ipn:2.0", b"hello again")]
        assert b.stats["sessions_up"] == 4  # a bulk and an expedited session, before and after
    finally:
        await b.stop()
        await a2.stop()


async def raw_session(addr, node_id="ipn:7.0", ka=0):
    """Open a hand-driven TCPCLv4 session to a TcpclCla listener."""
    r, wr = await asyncio.open_connection(*addr)
    wr.write(w.encode_contact_header() + w.encode_sess_init(m.SessInit(ka, 1 << 20, 1 << 24, node_id)))
    await wr.drain()
    head = await r.readexactly(6)
    assert head == b"dtn!\x04\x00"
    init = await r.readexactly(1 + 2 + 8 + 8 + 2)
    node_len = int.from_bytes(init[-2:], "big")
    await r.readexactly(node_len + 4)
    return r, wr


@run_async
async def test_partial_transfer_is_not_delivered_and_the_next_session_works():
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5)
    sa = Sink()
    await a.start(sa)
    try:
        r, wr = await raw_session(a.address)
        wr.write(w.encode_segment_header(m.SegmentFlag.START, 0, 100) + b"p" * 100)
        await wr.drain()
        ack = await r.readexactly(18)
        assert ack == w.encode_xfer_ack(m.SegmentFlag.START, 0, 100)
        wr.transport.abort()  # the link dies mid-transfer
        await until(lambda: a.stats["sessions_failed"] == 1, what="session failure")
        assert sa.bundles == []
        r, wr = await raw_session(a.address)
        wr.write(w.encode_segment_header(3, 0, 5) + b"whole")
        await wr.drain()
        assert await r.readexactly(18) == w.encode_xfer_ack(3, 0, 5)  # final ack after commit
        assert sa.bundles == [("ipn:7.0", b"whole")]
        wr.close()
    finally:
        await a.stop()


@run_async
async def test_final_ack_waits_for_the_commit():
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5)
    sa = Sink()
    sa.delay_s = 0.3
    await a.start(sa)
    try:
        r, wr = await raw_session(a.address)
        wr.write(w.encode_segment_header(3, 0, 5) + b"whole")
        await wr.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r.readexactly(18), timeout=0.15)
        assert sa.bundles == []
        await until(lambda: sa.bundles, what="commit")
        wr.close()
    finally:
        await a.stop()


@run_async
async def test_tls_only_peer_gets_a_clean_refusal_and_says_why():
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0))
    sink = Sink()
    await a.start(sink)
    try:
        r, wr = await asyncio.open_connection(*a.address)
        wr.write(b"dtn!\x04\x01")  # CAN_TLS
        await wr.drain()
        assert await r.readexactly(6) == b"dtn!\x04\x00"  # negotiated Enable TLS is false
        # a TLS-requiring peer now terminates with Contact Failure; we end without fuss
        wr.write(w.encode_sess_term(m.TermReason.CONTACT_FAILURE))
        await wr.drain()
        assert await r.read() == b""  # we close
        assert a.stats["sessions_failed"] == 1
        assert sink.tls and "offers TLS" in sink.tls[0]  # the agent hears why (an event), not silence
    finally:
        await a.stop()


def test_default_port_is_4556():
    assert TcpclCla("ipn:1.0").listen == ("0.0.0.0", 4556)
