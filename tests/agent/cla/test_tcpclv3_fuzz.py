"""Bad input into TCPCLv3: the core never raises, the listener never dies, reasons are counted."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hilnet.agent.cla import tcpclv3_wire as w
from hilnet.agent.cla.tcpclv3 import TcpclV3Cla
from hilnet.agent.cla.tcpclv3_events import SessionConfig, TransferReceived, Violation
from hilnet.agent.cla.tcpclv3_messages import ContactFlag, SegmentFlag
from hilnet.agent.cla.tcpclv3_session import TcpclV3Session


def valid_stream() -> bytes:
    """What a conforming peer sends: contact header, LENGTH, a bundle in two segments, acks, keepalive, SHUTDOWN."""
    return b"".join(
        [
            w.encode_contact_header(ContactFlag.SEGMENT_ACKS | ContactFlag.LENGTHS, 30, "ipn:9.0"),
            w.encode_length(8),
            w.encode_segment_header(SegmentFlag.START, 4) + b"abcd",
            w.encode_segment_header(SegmentFlag.END, 4) + b"efgh",
            w.encode_ack(3),
            w.KEEPALIVE_BYTES,
            w.encode_shutdown(0, 5),
        ]
    )


def feed_all(data: bytes, split: int) -> list:
    s = TcpclV3Session(SessionConfig("ipn:1.0", transfer_mru=1 << 20), active=False, now_ns=0)
    events: list = []
    for i in range(0, len(data), split):
        events += s.receive_data(data[i : i + split], i)
        s.data_to_send(i)
        for e in events:
            if isinstance(e, TransferReceived):
                events += s.accept_transfer(e.transfer_id, i)
    events += s.handle_timer(10**12)
    events += s.receive_eof(10**12)
    return events


def test_the_valid_stream_delivers_one_bundle_without_violations():
    events = feed_all(valid_stream(), 5)
    assert [e.data for e in events if isinstance(e, TransferReceived)] == [b"abcdefgh"]
    # the ack with nothing of ours in flight is the one deliberate oddity
    assert [e.reason for e in events if isinstance(e, Violation)] == ["ack_without_bundle"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_random_bytes_never_raise(data, split):
    feed_all(b"dtn!\x03\x01\x00\x0a\x07ipn:9.0" + data, split)
    feed_all(data, split)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_valid_stream_never_raises(draw):
    data = bytearray(valid_stream())
    for _ in range(draw.draw(st.integers(1, 6))):
        op = draw.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw.draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw.draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    feed_all(bytes(data), draw.draw(st.integers(1, 40)))


class Sink:
    def __init__(self):
        self.bundles: list[bytes] = []

    async def bundle_received(self, data, cla, peer):
        self.bundles.append(data)

    def session_changed(self, cla, peer, up, detail):
        pass

    def tls_failed(self, *args):
        pass


def test_listener_survives_junk_connections_and_keeps_a_real_session_working():
    async def main():
        a = TcpclV3Cla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5, handshake_timeout_s=1)
        sa = Sink()
        await a.start(sa)
        b = TcpclV3Cla("ipn:2.0", listen=None, peers={"ipn:1.0": a.address}, keepalive_s=5)
        await b.start(Sink())
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + 10
            while "ipn:1.0" not in b.peers_up():
                assert loop.time() < end
                await asyncio.sleep(0.01)
            rng = random.Random(4321)
            base = valid_stream()
            for i in range(60):
                if i % 2:
                    junk = rng.randbytes(rng.randrange(1, 400))
                else:
                    mutated = bytearray(base)
                    for _ in range(rng.randrange(1, 5)):
                        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                    junk = bytes(mutated)
                _, wr = await asyncio.open_connection(*a.address)
                wr.write(junk)
                await wr.drain()
                wr.close()
                if i % 10 == 0:  # the real session keeps carrying bundles meanwhile
                    await b.send("ipn:1.0", b"real bundle %d" % i)
            await asyncio.sleep(0.2)
            assert [x for x in sa.bundles if x.startswith(b"real")] == [b"real bundle %d" % i for i in range(0, 60, 10)]
            counted = ("sessions_up", "sessions_failed", "sessions_ended_clean", "bundles_received", "peer_shutdowns")
            reasons = {k: v for k, v in a.stats.items() if k not in counted}
            assert sum(reasons.values()) >= 30, a.stats  # most junk is caught and counted
            assert reasons.get("bad_magic", 0) >= 20
            assert "ipn:1.0" in b.peers_up()
        finally:
            await b.stop()
            await a.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
