"""One sink path: every CLA hands received bundles to the agent through deliver_to_sink().

First deliver_to_sink() alone, with plain fake sinks; then each CLA (TCPCLv4 and
MTCP over loopback TCP, serial over a pty pair) receiving one bundle the agent
accepts, one it refuses with a hilnet error and one it fails on with a bug: the
receiving CLA counts and logs the three alike, acknowledges only the first and
keeps running. What the sender learns differs only where the protocol cannot
say no: MTCP has no refusal, so its sender never hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from serial_ptys import Pty, Relay

from hilnet.agent.cla.base import SINK_BUG, SinkOutcome, deliver_to_sink
from hilnet.agent.cla.mtcp import MtcpCla
from hilnet.agent.cla.serial import SerialCla
from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.errors import StoreError, StoreFullError, TransferRefusedError

BASE_LOGGER = "hilnet.agent.cla.base"


class Sink:
    """A stand-in for the agent whose answer the test sets: accept, refuse (store full) or bug."""

    def __init__(self, mode: str = "accept"):
        self.mode = mode
        self.bundles: list[bytes] = []
        self.release: asyncio.Event | None = None  # when set, a commit waits for it

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        if self.release is not None:
            await self.release.wait()
        await asyncio.sleep(0)  # as a store commit would
        if self.mode == "refuse":
            raise StoreFullError("quota reached")
        if self.mode == "bug":
            raise RuntimeError("a bug in the agent")
        self.bundles.append(data)

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        pass

    def tls_failed(self, cla, reason, peer, certified, address):
        pass


def base_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == BASE_LOGGER]


# --- deliver_to_sink() alone -------------------------------------------------------


def test_accepted_is_counted_and_says_ack():
    async def main():
        stats: Counter[str] = Counter()
        sink = Sink()
        result = await deliver_to_sink(sink, b"b", "tcpcl", "ipn:2.0", stats)
        assert result.accepted and result.outcome is SinkOutcome.ACCEPTED
        assert sink.bundles == [b"b"] and stats == Counter(bundles_received=1)

    asyncio.run(main())


@pytest.mark.parametrize("error, reason", [(StoreFullError("quota"), "store_full"), (StoreError("disk"), "store")])
def test_a_hilnet_error_is_a_refusal_with_a_counted_reason(error, reason, caplog):
    class Refusing(Sink):
        async def bundle_received(self, data, cla, peer):
            raise error

    async def main():
        stats: Counter[str] = Counter()
        result = await deliver_to_sink(Refusing(), b"b", "serial", "ipn:2.0", stats)
        assert result.outcome is SinkOutcome.REFUSED and not result.accepted
        assert result.reason == reason and result.error is error
        assert stats == Counter({f"refused_{reason}": 1})

    caplog.set_level(logging.INFO)
    asyncio.run(main())
    (record,) = base_records(caplog)
    assert record.levelno == logging.INFO and record.exc_info is None  # expected, so no traceback


def test_a_bug_is_logged_once_with_its_traceback_counted_and_not_acked(caplog):
    async def main():
        stats: Counter[str] = Counter()
        result = await deliver_to_sink(Sink("bug"), b"b", "mtcp", None, stats)
        assert result.outcome is SinkOutcome.FAILED and not result.accepted
        assert result.reason == SINK_BUG and isinstance(result.error, RuntimeError)
        assert stats == Counter({SINK_BUG: 1})

    asyncio.run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == BASE_LOGGER
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError


@pytest.mark.parametrize("mode, counter", [("accept", "bundles_received"), ("bug", SINK_BUG)])
def test_a_cancelled_caller_does_not_cut_the_commit_short(mode, counter, caplog):
    """A session torn down while the agent commits: the commit finishes and is counted, nothing is acked."""

    async def main():
        stats: Counter[str] = Counter()
        sink = Sink(mode)
        sink.release = asyncio.Event()
        caller = asyncio.ensure_future(deliver_to_sink(sink, b"b", "tcpcl", "ipn:2.0", stats))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        sink.release.set()
        for _ in range(100):
            if stats:
                break
            await asyncio.sleep(0.001)
        assert stats == Counter({counter: 1})
        assert sink.bundles == ([b"b"] if mode == "accept" else [])

    asyncio.run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == (1 if mode == "bug" else 0)  # still logged, and only once


# --- every CLA through it ------------------------------------------------------------

BAUD = 921600  # serial: fast enough that real-time tests stay short


@contextlib.asynccontextmanager
async def cla_pair(kind: str, tmp_path) -> AsyncIterator[tuple[object, object, Sink]]:
    """(sender, receiver, receiver's sink) of one CLA kind, connected; the receiver is ipn:1.0."""
    relay = None
    ptys: list[Pty] = []
    if kind == "tcpcl":
        rx = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), keepalive_s=5)
        make_tx = lambda: TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": rx.address}, keepalive_s=5)  # noqa: E731
    elif kind == "mtcp":
        rx = MtcpCla("ipn:1.0", listen=("127.0.0.1", 0))
        make_tx = lambda: MtcpCla("ipn:2.0", listen=None, peers={"ipn:1.0": rx.address})  # noqa: E731
    else:
        ptys = [Pty(str(tmp_path / "tx-uart")), Pty(str(tmp_path / "rx-uart"))]
        relay = Relay(*ptys)
        rx = SerialCla("ipn:1.0", ptys[1].path, BAUD, peer="ipn:2.0", delay_hint_ns=0)
        make_tx = lambda: SerialCla("ipn:2.0", ptys[0].path, BAUD, peer="ipn:1.0", delay_hint_ns=0)  # noqa: E731
    sink = Sink()
    await rx.start(sink)
    tx = make_tx()
    await tx.start(Sink())
    try:
        for _ in range(1000):
            if tx.peers_up() == {"ipn:1.0"}:
                break
            await asyncio.sleep(0.01)
        assert tx.peers_up() == {"ipn:1.0"}
        yield tx, rx, sink
    finally:
        await tx.stop()
        await rx.stop()
        if relay is not None:
            relay.detach()
        for p in ptys:
            p.close()


async def settle(cond) -> None:
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("kind", ["tcpcl", "mtcp", "serial"])
@pytest.mark.parametrize("mode", ["accept", "refuse", "bug"])
def test_every_cla_answers_the_agent_alike(kind, mode, tmp_path, caplog):
    expected = {
        "accept": Counter(bundles_received=1),
        "refuse": Counter(refused_store_full=1),
        "bug": Counter({SINK_BUG: 1}),
    }[mode]
    counted = ("bundles_received", "refused_store_full", SINK_BUG)

    async def main():
        async with cla_pair(kind, tmp_path) as (tx, rx, sink):
            sink.mode = mode
            refused = False
            try:
                await asyncio.wait_for(tx.send("ipn:1.0", b"first"), 20)
            except TransferRefusedError:
                refused = True
            await settle(lambda: sum(rx.stats[k] for k in counted) >= 1)
            assert Counter({k: rx.stats[k] for k in counted if rx.stats[k]}) == expected
            assert sink.bundles == ([b"first"] if mode == "accept" else [])
            # Only the accepted bundle is acknowledged; MTCP cannot refuse, so it drops and counts instead.
            if kind == "mtcp":
                assert not refused
                if mode != "accept":
                    dropped = f"dropped_{'store_full' if mode == 'refuse' else SINK_BUG}"
                    await settle(lambda: rx.stats[dropped] == 1)
            else:
                assert refused == (mode != "accept")
            # ... and the link lives on: the next bundle the agent takes arrives.
            sink.mode = "accept"
            await asyncio.wait_for(tx.send("ipn:1.0", b"second"), 20)
            await settle(lambda: b"second" in sink.bundles)

    caplog.set_level(logging.INFO)
    asyncio.run(main())
    # The bug: once, with its traceback, from the one sink path (asyncio's own noise about
    # connection tasks cancelled by stop() is no business of the sink path).
    bugs = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert [r.name for r in bugs] == ([BASE_LOGGER] if mode == "bug" else [])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("hilnet")]
    assert errors == bugs
    assert len(base_records(caplog)) == (mode != "accept")
