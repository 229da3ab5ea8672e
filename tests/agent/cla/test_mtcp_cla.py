"""MTCP: the decoder with plain bytes, MtcpCla over loopback, interop with pyd3tn."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import socket

import cbor2
import pytest
from pyd3tn.bundle7 import serialize_bundle7
from pyd3tn.mtcp import MTCPConnection, MTCPSocket

from hilnet.agent.cla.mtcp import MtcpCla, MtcpDecoder, mtcp_head
from hilnet.errors import ClaError, StoreFullError, WireError


class Sink:
    def __init__(self):
        self.bundles: list[bytes] = []
        self.full = False

    async def bundle_received(self, data, cla, peer):
        if self.full:
            raise StoreFullError("quota")
        self.bundles.append(data)

    def session_changed(self, cla, peer, up, detail):
        pass


def run_async(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        asyncio.run(asyncio.wait_for(fn(*a, **kw), timeout=60))

    return wrapper


async def until(cond, timeout=10.0, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("n", [0, 1, 23, 24, 255, 256, 65535, 65536, 70000])
def test_head_matches_cbor2_and_decodes(n):
    data = os.urandom(n)
    framed = mtcp_head(n) + data
    assert framed == cbor2.dumps(data)
    dec = MtcpDecoder(1 << 20)
    got = []
    for i in range(0, len(framed), 7):  # in small pieces
        got += dec.feed(framed[i : i + 7])
    assert got == [data] and dec.idle


def test_back_to_back_bundles_in_one_read():
    stream = b"".join(cbor2.dumps(b"x" * k) for k in (3, 30, 300))
    assert MtcpDecoder(1000).feed(stream) == [b"x" * 3, b"x" * 30, b"x" * 300]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (cbor2.dumps("text"), "not_a_byte_string"),
        (cbor2.dumps([1, 2]), "not_a_byte_string"),
        (b"\x5f\x41a\xff", "indefinite_length"),
        (b"\x5c", "reserved_additional_info"),
        (mtcp_head(1001), "bundle_too_big"),
    ],
)
def test_malformed_heads_raise_counted_reasons(raw, reason):
    with pytest.raises(WireError) as info:
        MtcpDecoder(1000).feed(raw)
    assert info.value.reason == reason


def test_truncated_bundle_leaves_decoder_busy():
    dec = MtcpDecoder(100)
    assert dec.feed(mtcp_head(10) + b"abc") == []
    assert not dec.idle


@run_async
async def test_pyd3tn_client_sends_into_mtcp_cla():
    cla = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0))
    sink = Sink()
    await cla.start(sink)
    host, port = cla.address
    bundle = serialize_bundle7("ipn:2.1", "ipn:1.1", b"hello from pyd3tn" * 100)

    def client():
        with MTCPConnection(host, port) as conn:
            conn.send_bundle(bundle)
            conn.send_bundle(bundle)

    try:
        await asyncio.to_thread(client)
        await until(lambda: cla.stats["bundles_received"] == 2, what="two bundles")
        assert sink.bundles == [bundle, bundle]
        assert cla.stats["bundles_received"] == 2
    finally:
        await cla.stop()


@run_async
async def test_mtcp_cla_sends_into_a_pyd3tn_socket():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    cla = MtcpCla("ipn:1.0", listen=None, peers={"ipn:2.0": ("127.0.0.1", port)})
    await cla.start(Sink())
    bundle = serialize_bundle7("ipn:1.1", "ipn:2.1", os.urandom(300_000))

    def receive():
        conn, _ = listener.accept()
        with conn:
            return MTCPSocket(conn, timeout=10).recv_bundle()

    try:
        got = asyncio.create_task(asyncio.to_thread(receive))
        await until(lambda: cla.peers_up() == {"ipn:2.0"}, what="connection")
        await cla.send("ipn:2.0", bundle)
        assert await got == bundle
    finally:
        await cla.stop()
        listener.close()


@run_async
async def test_two_mtcp_clas_and_malformed_input_keeps_listener_alive():
    rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0), max_bundle=1 << 20)
    sink = Sink()
    await rx.start(sink)
    tx = MtcpCla("ipn:2.0", listen=None, peers={"ipn:1.0": rx.address})
    await tx.start(Sink())
    try:
        await until(lambda: tx.peers_up() == {"ipn:1.0"}, what="connection")
        rng = random.Random(5)
        for _ in range(30):  # junk connections: random bytes, oversized heads, truncations
            r, w = await asyncio.open_connection(*rx.address)
            junk = rng.choice(
                [
                    rng.randbytes(rng.randrange(1, 200)),
                    mtcp_head(2 << 20),
                    mtcp_head(50) + b"short",
                    cbor2.dumps({"a": 1}),
                ]
            )
            w.write(junk)
            await w.drain()
            w.close()
        await tx.send("ipn:1.0", b"still here")
        await until(lambda: b"still here" in sink.bundles, what="good bundle")
        assert sum(v for k, v in rx.stats.items() if k not in ("connections", "bundles_received")) >= 20
        assert rx.stats["bundle_too_big"] >= 1
    finally:
        await tx.stop()
        await rx.stop()


@run_async
async def test_send_without_connection_raises():
    cla = MtcpCla("ipn:1.0", listen=None)
    await cla.start(Sink())
    with pytest.raises(ClaError):
        await cla.send("ipn:2.0", b"x")
    await cla.stop()


@run_async
async def test_store_full_is_counted_as_a_drop():
    rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0))
    sink = Sink()
    sink.full = True
    await rx.start(sink)
    r, w = await asyncio.open_connection(*rx.address)
    w.write(cbor2.dumps(b"bundle"))
    await w.drain()
    try:
        await until(lambda: rx.stats["dropped_store_full"] == 1, what="drop count")
    finally:
        w.close()
        await rx.stop()
