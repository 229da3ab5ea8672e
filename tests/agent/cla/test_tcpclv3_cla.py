"""TcpclV3Cla over real loopback sockets: two of ours, and a hand-written peer that speaks as ION does."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from hilnet.agent.cla import build_cla
from hilnet.agent.cla import tcpclv3_wire as w
from hilnet.agent.cla.tcpclv3 import TcpclV3Cla
from hilnet.agent.cla.tcpclv3_messages import ContactFlag, ShutdownReason
from hilnet.agent.protocol import HostPort, TcpclV3Config
from hilnet.clock import MonotonicClock
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError


class Sink:
    def __init__(self):
        self.bundles: list[tuple[str | None, bytes]] = []
        self.changes: list[tuple[str, bool, dict]] = []
        self.full = False

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        if self.full:
            raise StoreFullError("quota reached")
        self.bundles.append((peer, data))

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        self.changes.append((peer, up, detail))

    def tls_failed(self, *args) -> None:
        raise AssertionError("TCPCLv3 has no TLS")


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


async def make_pair(**kw):
    a = TcpclV3Cla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5, **kw)
    sa = Sink()
    await a.start(sa)
    b = TcpclV3Cla("ipn:2.0", listen=None, peers={"ipn:1.0": a.address}, keepalive_s=5, **kw)
    sb = Sink()
    await b.start(sb)
    await until(lambda: b.peers_up() == {"ipn:1.0"} and a.peers_up() == {"ipn:2.0"}, what="session up")
    return a, sa, b, sb


@run_async
async def test_bundles_both_ways_over_one_session():
    a, sa, b, sb = await make_pair(max_segment=1000)
    try:
        big = bytes(range(256)) * 40
        await b.send("ipn:1.0", big)
        await a.send("ipn:2.0", b"to b")  # over the session B opened
        assert sa.bundles == [("ipn:2.0", big)] and sb.bundles == [("ipn:1.0", b"to b")]
        assert a.stats["bundles_received"] == 1 and b.stats["bundles_sent"] == 1
        (peer, up, detail) = sb.changes[0]
        assert (peer, up, detail["refusals"]) == ("ipn:1.0", True, True)
    finally:
        await b.stop()
        await a.stop()
    assert ("ipn:1.0", False) in [(p, u) for p, u, _ in sb.changes]


@run_async
async def test_many_pipelined_bundles_arrive_in_order():
    a, sa, b, sb = await make_pair()
    try:
        await asyncio.gather(*(b.send("ipn:1.0", b"bundle %03d" % i) for i in range(100)))
        assert [d for _, d in sa.bundles] == [b"bundle %03d" % i for i in range(100)]
    finally:
        await b.stop()
        await a.stop()


@run_async
async def test_a_full_store_refuses_and_the_sender_keeps_the_bundle():
    a, sa, b, sb = await make_pair()
    try:
        sa.full = True
        with pytest.raises(TransferRefusedError, match="no_resources"):
            await b.send("ipn:1.0", b"refused")
        sa.full = False
        await b.send("ipn:1.0", b"later")
        assert sa.bundles == [("ipn:2.0", b"later")]
    finally:
        await b.stop()
        await a.stop()


@run_async
async def test_send_without_a_session_raises():
    a = TcpclV3Cla("ipn:1.0", listen=None)
    await a.start(Sink())
    try:
        with pytest.raises(ClaError):
            await a.send("ipn:9.0", b"x")
    finally:
        await a.stop()


class IonLikePeer:
    """A listener that speaks as ION's tcpcli: acks only, keepalive 15, an ipn EID; it records what it heard."""

    def __init__(self, answer_shutdown: bytes | None = None):
        self.answer_shutdown = answer_shutdown  # sent right after its contact header, if given
        self.heard: list[bytes] = []
        self.connects: list[float] = []
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects.append(time.monotonic())
        writer.write(w.encode_contact_header(ContactFlag.SEGMENT_ACKS, 15, "ipn:7.0"))
        if self.answer_shutdown is not None:
            writer.write(self.answer_shutdown)
        await writer.drain()
        data = bytearray()
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                data += chunk
        except (TimeoutError, ConnectionError):
            pass
        self.heard.append(bytes(data))
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@run_async
async def test_against_a_peer_without_refusal_a_full_store_ends_the_session_busy():
    a = TcpclV3Cla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5)
    sa = Sink()
    sa.full = True
    await a.start(sa)
    r, wr = await asyncio.open_connection(*a.address)
    try:
        wr.write(w.encode_contact_header(ContactFlag.SEGMENT_ACKS, 15, "ipn:7.0"))
        wr.write(w.encode_segment_header(3, 5) + b"hello")
        heard = bytearray()
        while chunk := await asyncio.wait_for(r.read(4096), 5):
            heard += chunk
        assert heard.endswith(w.encode_shutdown(ShutdownReason.BUSY, 1))  # and no ack of all 5 octets
        assert w.encode_ack(5) not in heard
    finally:
        wr.close()
        await a.stop()


@run_async
async def test_the_connector_honours_the_reconnection_delay_a_shutdown_asked_for():
    peer = IonLikePeer(answer_shutdown=w.encode_shutdown(ShutdownReason.BUSY, 1))
    addr = await peer.start()
    a = TcpclV3Cla("ipn:1.0", listen=None, peers={"ipn:7.0": addr}, reconnect_min_s=0.05)
    await a.start(Sink())
    try:
        await until(lambda: len(peer.connects) >= 2, what="a second connect")
        assert peer.connects[1] - peer.connects[0] >= 0.95
        assert a.stats["reconnect_delays"] >= 1 and a.stats["peer_shutdowns"] >= 1
    finally:
        await a.stop()
        await peer.stop()


@run_async
async def test_stop_says_shutdown_to_the_peer():
    peer = IonLikePeer()
    addr = await peer.start()
    a = TcpclV3Cla("ipn:1.0", listen=None, peers={"ipn:7.0": addr})
    await a.start(Sink())
    await until(lambda: a.peers_up() == {"ipn:7.0"}, what="session up")
    await a.stop()
    await until(lambda: peer.heard, what="the peer saw the end")
    assert peer.heard[0].startswith(b"dtn!\x03") and peer.heard[0].endswith(bytes((0x50,)))
    await peer.stop()


def test_build_cla_makes_a_tcpclv3_from_its_config():
    cfg = TcpclV3Config(HostPort("127.0.0.1", 0), {"ipn:2.0": HostPort("127.0.0.1", 4557)}, keepalive_s=3)
    cla = build_cla(cfg, node_id="ipn:1.0", clock=MonotonicClock(), max_bundle=1 << 20)
    assert isinstance(cla, TcpclV3Cla) and cla.name == "tcpclv3"
    assert cla.session_config.keepalive_s == 3 and cla.session_config.transfer_mru == 1 << 20
    assert cla.peers == {"ipn:2.0": ("127.0.0.1", 4557)}
