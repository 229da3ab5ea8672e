"""Classes of service on TCPCLv4: an expedited bundle does not wait for a bulk transfer under way.

Two TcpclCla talk through the real link emulator (a TCP stream relay, as on the loopback
backend) shaped to 2 Mbit/s with 250 ms of delay each way and a 16 KiB queue before the
line, as a router on the path would have. The connector keeps a second session for
expedited bundles, so a 400 B bundle sent while 1 MiB of bulk is half way across starts at
once on its own session: it waits only for what is queued at the bottleneck.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.bundle.cos import Priority, rank_of
from hilnet.link.endpoints import tcp as tcp_endpoint
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig

MS = 1_000_000
RATE = 2_000_000
DELAY = 250 * MS
QUEUE = 16 * 1024
UNIT = 1448  # bytes the relay reads per unit: one TCP segment on a 1500-byte MTU
BULK = rank_of(Priority.BULK)
EXPEDITED = rank_of(Priority.EXPEDITED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self) -> None:
        self.bundles: list[tuple[float, bytes]] = []

    async def bundle_received(self, data, cla, peer):
        self.bundles.append((time.monotonic(), data))

    def session_changed(self, cla, peer, up, detail):
        pass

    def tls_failed(self, cla, reason, peer, certified, address):
        pass


async def until(cond, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def _run(expedited_session: bool) -> tuple[float, list[bytes], bytes, bytes, int]:
    """Send 1 MiB bulk, then 400 B expedited half way; returns (latency s, received, bulk, tweet, sessions)."""
    cfg = DirectionConfig(rate_bps=RATE, delay_ns=DELAY, queue_bytes=QUEUE)
    engine = Engine()
    b_port, relay_a, relay_b = free_port(), free_port(), free_port()
    link = engine.add_link(
        "iss-tdrs",
        f"tcp://127.0.0.1:{relay_a}?peer=127.0.0.1:{free_port()}",
        f"tcp://127.0.0.1:{relay_b}?peer=127.0.0.1:{b_port}",
        ab=cfg,
        ba=cfg,
    )
    engine.start()
    rng = random.Random(7)
    bulk, tweet = rng.randbytes(1 << 20), rng.randbytes(400)

    async def main():
        sink_b = Sink()
        b = TcpclCla("ipn:2.0", listen=("127.0.0.1", b_port))
        a = TcpclCla(
            "ipn:1.0", listen=None, peers={"ipn:2.0": ("127.0.0.1", relay_a)}, expedited_session=expedited_session
        )
        await b.start(sink_b)
        await a.start(Sink())
        try:
            want = 2 if expedited_session else 1
            await until(lambda: len([c for c in a._up.get("ipn:2.0", ()) if c.session.established]) == want, 15)
            sessions = len(a._up["ipn:2.0"])
            photo = asyncio.create_task(a.send("ipn:2.0", bulk, rank=BULK))
            # half the photo has crossed the line
            await until(lambda: link.stats()["a->b"]["bytes_out"] >= len(bulk) // 2, 30)
            t0 = time.monotonic()
            await asyncio.wait_for(a.send("ipn:2.0", tweet, rank=EXPEDITED), 30)
            await until(lambda: any(d == tweet for _, d in sink_b.bundles), 30)
            arrived = next(t for t, d in sink_b.bundles if d == tweet)
            await asyncio.wait_for(photo, 60)
            return arrived - t0, [d for _, d in sink_b.bundles], sessions
        finally:
            await a.stop()
            await b.stop()

    try:
        latency, received, sessions = asyncio.run(main())
    finally:
        engine.stop()
        engine.join(5)
        engine.close()
    return latency, received, bulk, tweet, sessions


@pytest.fixture(autouse=True)
def packet_sized_units(monkeypatch):
    """The relay reads (and the line carries) one TCP segment's worth at a time, as a router
    forwards packets; its default 64 KiB reads would put 2 x 262 ms of bulk ahead of anything."""
    monkeypatch.setattr(tcp_endpoint, "READ_SIZE", UNIT)


def test_expedited_bundle_starts_on_its_own_session_while_bulk_is_under_way():
    latency, received, bulk, tweet, sessions = _run(expedited_session=True)
    assert sessions == 2
    queue_s = (QUEUE + UNIT) * 8 / RATE  # what waits at the bottleneck ahead of the tweet, at most
    own_s = (400 + 200) * 8 / RATE  # the bundle with TCPCL, TCP/IP headers
    # plus one-way delay, and a little for the relay's polling and two event loops
    bound = queue_s + own_s + DELAY / 1e9 + 0.15
    assert latency <= bound, f"tweet took {latency * 1000:.0f} ms, bound {bound * 1000:.0f} ms"
    assert received.count(tweet) == 1 and received.count(bulk) == 1  # intact and once
    assert received.index(tweet) < received.index(bulk)


def test_one_session_makes_the_same_tweet_wait_for_the_bulk_transfer():
    """The baseline: RFC 9174 sends transfers of one session one after the other."""
    latency, received, bulk, tweet, sessions = _run(expedited_session=False)
    assert sessions == 1
    assert received.index(bulk) < received.index(tweet)
    assert latency > 1.5  # about the half of 4.2 s the photo had left
