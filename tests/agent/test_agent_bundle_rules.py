"""What the agent does with bundles that break a rule of the store or of RFC 9171 section 4.2.4.

- A creation time or lifetime past what a node can keep (Unix ns must fit 64
  bits) is refused at decode with its byte offset: over TCPCL the transfer
  ends once, the store never sees it (it used to raise OverflowError in the
  store and answer XFER_REFUSE "Retransmit", so the peer retried forever).
- An extension block this node cannot process is honoured by its flags:
  "delete bundle" drops the bundle with an event, "discard block" removes the
  block before storing, "report" is said in the event.
"""

from __future__ import annotations

import asyncio
import time

from agent_test_fakes import Node, S

from hilnet.agent import protocol as ev
from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.agent.config import AgentConfig
from hilnet.agent.intake import bundle_key
from hilnet.bundle import cbor
from hilnet.bundle.blocks import BlockFlag, dtn_ms_from_unix_ns
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.make import make_bundle
from hilnet.clock import VirtualClock

T0 = 1_000 * S
REAL0 = time.time_ns() - T0
UNKNOWN_TYPE = 200  # no registry entry; this node cannot process it


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def node(tmp_path, **kw) -> Node:
    n = Node(VirtualClock(T0), REAL0)
    return await n.configure(AgentConfig(node="b", eid="ipn:2.0", store_path=str(tmp_path / "b.sqlite"), **kw))


def far_future_bundle(creation_ms: int, lifetime_ms: int) -> bytes:
    """A CRC-less bundle ipn:1.0 -> ipn:2.1 with these times (the encoder refuses to write one)."""
    primary = b"".join(
        (
            b"\x88\x07\x00\x00",
            b"\x82\x02\x82\x02\x01",  # destination ipn:2.1
            b"\x82\x02\x82\x01\x00",  # source ipn:1.0
            b"\x82\x02\x82\x01\x00",  # report-to ipn:1.0
            b"\x82" + cbor.uint(creation_ms) + b"\x00",
            cbor.uint(lifetime_ms),
        )
    )
    return b"\x9f" + primary + b"\x85\x01\x01\x00\x00\x42hi\xff"


def test_a_lifetime_past_2262_is_refused_once_over_tcpcl_and_never_stored(tmp_path):
    now_ms = dtn_ms_from_unix_ns(REAL0 + T0)
    data = far_future_bundle(now_ms, (1 << 63) - 1)  # ~292 million years

    async def main():
        n = await node(tmp_path)
        rx = TcpclCla("ipn:2.0", listen=("127.0.0.1", 0), keepalive_s=5)
        await rx.start(n.agent)
        tx = TcpclCla("ipn:1.0", listen=None, peers={"ipn:2.0": rx.address}, keepalive_s=5)
        await tx.start(n.agent)  # its own sink is never used here
        try:
            await n.until(lambda: "ipn:2.0" in tx.peers_up(), timeout_s=10)
            await tx.send("ipn:2.0", data)  # ends: no XFER_REFUSE "retransmit" to retry on
            assert tx.stats["bundles_sent"] == 1
            rejected = n.of(ev.Rejected)
            assert len(rejected) == 1 and "lifetime" in rejected[0].reason and "200 years" in rejected[0].reason
            assert n.agent.store.count() == 0 and not n.of(ev.Stored)
            assert rx.stats["sink_bug"] == 0
        finally:
            await tx.stop()
            await rx.stop()
            await n.agent.stop()

    run(main())


# -- RFC 9171 section 4.2.4: blocks this node cannot process --------------------------


def with_unknown_block(flags: BlockFlag) -> bytes:
    now_ms = dtn_ms_from_unix_ns(REAL0 + T0)
    b = make_bundle("ipn:1.0", "ipn:3.1", b"payload", 3_600_000, creation_ms=now_ms)
    return encode_bundle(b.with_extension(UNKNOWN_TYPE, b"\x01", flags))


def test_unknown_block_flagged_delete_bundle_is_dropped_not_stored(tmp_path):
    data = with_unknown_block(BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE | BlockFlag.REPORT_IF_UNPROCESSABLE)

    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            await n.agent.bundle_received(data, "fake", "ipn:1.0")
            key = bundle_key(decode_bundle(data).id)
            assert not n.agent.store.contains(key)
            dropped = n.of(ev.Dropped)
            assert len(dropped) == 1 and dropped[0].bundle == key
            assert "block type 200" in dropped[0].reason and "block unsupported" in dropped[0].reason
            assert "status report" in dropped[0].reason
        finally:
            await n.agent.stop()

    run(main())


def test_unknown_block_flagged_discard_is_removed_before_storing(tmp_path):
    data = with_unknown_block(BlockFlag.DISCARD_IF_UNPROCESSABLE)

    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            await n.agent.bundle_received(data, "fake", "ipn:1.0")
            key = bundle_key(decode_bundle(data).id)
            stored = n.agent.store.get(key)
            assert stored is not None
            assert decode_bundle(stored).block(UNKNOWN_TYPE) is None
            assert not n.of(ev.Dropped)
        finally:
            await n.agent.stop()

    run(main())


def test_unknown_block_without_flags_is_kept_and_forwarded(tmp_path):
    data = with_unknown_block(BlockFlag.NONE)

    async def main():
        n = await node(tmp_path, routes={"*": "ipn:3.0"})
        try:
            await n.agent.bundle_received(data, "fake", "ipn:1.0")
            stored = n.agent.store.get(bundle_key(decode_bundle(data).id))
            assert stored is not None and decode_bundle(stored).block(UNKNOWN_TYPE) is not None
        finally:
            await n.agent.stop()

    run(main())
