"""Connect afresh when the plan opens a contact (the instants, the driver on a VirtualClock, the connector); capped backoff."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hilnet.agent.cla.tcp_base import RTO_MAX_MS, TCP_RTO_MAX_MS, TcpClaBase, _Kicked, _unless_kicked, cap_backoff
from hilnet.agent.config import AgentConfig
from hilnet.agent.openings import GUARD_NS, MAX_KICKS, RETRY_SLACK_NS, Opening, kick_at_openings, openings, start_kicks
from hilnet.clock import VirtualClock
from hilnet.scenario.contact import Contact

S = 1_000_000_000


def c(frm: str, to: str, start_s: float, end_s: float, owlt_ms: int = 100) -> Contact:
    return Contact(frm, to, int(start_s * S), int(end_s * S), 1000, owlt_ms * 1_000_000)


PLAN = (
    c("iss", "tdrs", 0, 25),
    c("tdrs", "iss", 0, 25, owlt_ms=150),
    c("iss", "tdrs", 27, 40),  # a parameter change splits this window: 40 is no opening
    c("iss", "tdrs", 40, 80),
    c("tdrs", "iss", 27, 80, owlt_ms=150),
    c("iss", "gs", 30, 31),  # one way only: the round trip is its one-way time
    c("tdrs", "gs", 0, 95),  # not the node's
)
RTT = 250_000_000  # iss -> tdrs 100 ms, back 150 ms
RETRY = 2 * RTT + RETRY_SLACK_NS


def test_openings_are_the_starts_of_each_peers_merged_windows():
    assert openings(PLAN, "iss") == (
        Opening(0, "tdrs", 25 * S, RTT),
        Opening(27 * S, "tdrs", 80 * S, RTT),
        Opening(30 * S, "gs", 31 * S, 100_000_000),
    )
    assert [(o.t_ns, o.peer) for o in openings(PLAN, "gs")] == [(0, "tdrs"), (30 * S, "iss")]
    assert openings(PLAN, "mars") == ()


def _kicks(clock: VirtualClock, epoch: int, ready_after: int | None = None) -> list[tuple[int, str]]:
    """(plan ns, peer) of each kick; the peer's session is up ``ready_after`` kicks after an opening."""
    kicked: list[tuple[int, str]] = []

    def ready(peer: str) -> bool:
        return ready_after is not None and sum(1 for _, p in kicked if p == peer) >= ready_after

    def kick(peer: str) -> None:
        kicked.append((clock.now_ns() - epoch, peer))

    asyncio.run(kick_at_openings(clock, epoch, openings(PLAN, "iss"), kick, ready))
    return kicked


def test_kicks_come_at_each_opening_and_each_round_trip_until_a_session_is_up():
    clock = VirtualClock(start_ns=100 * S)
    epoch = 100 * S + 2 * S  # the run starts 2 s after the agent was configured
    # the session is up after the first kick: one kick per opening
    kicked = _kicks(clock, epoch, ready_after=1)
    assert kicked == [(GUARD_NS, "tdrs"), (27 * S + GUARD_NS, "tdrs"), (30 * S + GUARD_NS, "gs")]


def test_without_a_session_the_kicks_repeat_each_round_trip_up_to_the_limit():
    clock = VirtualClock()
    kicked = _kicks(clock, 0)  # never ready
    tdrs = [t for t, p in kicked if p == "tdrs"]
    assert tdrs[:3] == [GUARD_NS, GUARD_NS + RETRY, GUARD_NS + 2 * RETRY]
    assert len(tdrs) == 2 * MAX_KICKS  # two openings, MAX_KICKS each
    gs = [t for t, p in kicked if p == "gs"]
    # a 1 s contact with a 100 ms round trip: kicks only while it lasts
    assert gs == [30 * S + GUARD_NS + i * (200_000_000 + RETRY_SLACK_NS) for i in range(4)]


def test_openings_already_past_are_skipped_after_a_restart():
    clock = VirtualClock(start_ns=28 * S)  # restarted mid-run: 0 and 27 s are gone, 30 s is ahead
    assert _kicks(clock, 0, ready_after=1) == [(30 * S + GUARD_NS, "gs")]


class _Cla:
    def __init__(self):
        self.started: list[str] = []

    def contact_started(self, peer: str) -> None:
        self.started.append(peer)


def test_start_kicks_names_peers_by_node_id_and_stops():
    async def main():
        clock = VirtualClock(start_ns=GUARD_NS)  # the opening at 0 is due now; the next at 27 s is not
        cla, plain = _Cla(), object()  # a CLA without connectors is left alone
        cfg = AgentConfig(node="iss", eid="ipn:1.0", store_path="unused", contacts=PLAN, epoch_ns=0)
        stop = start_kicks(clock, cfg, {"iss": "ipn:1.0", "tdrs": "ipn:2.0"}, [cla, plain], lambda nid: True)
        for _ in range(20):
            await asyncio.sleep(0)
        await stop()
        return cla.started

    assert asyncio.run(main()) == ["ipn:2.0"]  # and the CLA is told the node id, not the scenario name


class _HeldClock(VirtualClock):
    """A virtual clock whose waits last until the test advances it, so a backoff can be seen waiting."""

    def __init__(self):
        super().__init__()
        self.waiting: list[asyncio.Future[None]] = []

    async def wait_until_ns(self, deadline_ns: int) -> None:
        while self.now_ns() < deadline_ns:
            fut = asyncio.get_running_loop().create_future()
            self.waiting.append(fut)
            await fut

    def advance(self, delta_ns: int) -> int:
        t = super().advance(delta_ns)
        for f in self.waiting:
            if not f.done():
                f.set_result(None)
        self.waiting.clear()
        return t


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Connector(TcpClaBase):
    async def _run_outgoing(self, peer, addr, reader, writer) -> bool:  # pragma: no cover - never connects
        writer.close()
        return False


def test_a_planned_opening_ends_a_connectors_backoff_at_once():
    async def main():
        clock = _HeldClock()
        cla = _Connector("ipn:1.0", None, {"ipn:2.0": ("127.0.0.1", _closed_port())}, clock, "t", 10.0, 10.0, 5.0)
        await cla.start(None)  # type: ignore[arg-type]
        for _ in range(200):  # the first connect is refused, then the connector waits out 10 s of backoff
            if clock.waiting:
                break
            await asyncio.sleep(0.001)
        first = cla.stats["connect_failed"]
        cla.contact_started("ipn:3.0")  # another peer: no effect
        await asyncio.sleep(0.01)
        assert cla.stats["connect_failed"] == first
        cla.contact_started("ipn:2.0")
        for _ in range(200):
            if cla.stats["connect_failed"] > first:
                break
            await asyncio.sleep(0.001)
        got = (first, cla.stats["connect_failed"], cla.stats["contact_kicks"], clock.now_ns())
        await cla.stop()
        return got

    first, after, kicks, now = asyncio.run(main())
    assert first == 1 and after == 2 and kicks == 1
    assert now == 0  # no virtual time passed: the kick, not the backoff, started the second connect


def test_unless_kicked_cancels_the_work_or_returns_its_result():
    async def main():
        kick = asyncio.Event()
        never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending = asyncio.ensure_future(_unless_kicked(kick, never))
        await asyncio.sleep(0)
        kick.set()
        with pytest.raises(_Kicked):
            await pending
        assert never.cancelled()
        assert await _unless_kicked(asyncio.Event(), asyncio.sleep(0, result=7)) == 7

    asyncio.run(main())


def _kernel_caps_rto() -> bool:
    with socket.socket() as s:
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, RTO_MAX_MS)
        except OSError:
            return False
        return s.getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS) == RTO_MAX_MS


@pytest.mark.skipif(not _kernel_caps_rto(), reason="the kernel has no TCP_RTO_MAX_MS (Linux 6.15+)")
def test_both_ends_of_a_connection_cap_the_retransmission_backoff():
    async def main():
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Both(TcpClaBase):
            async def _accept(self, reader, writer):
                accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS))
                writer.close()

        server = Both("ipn:2.0", ("127.0.0.1", 0), None, VirtualClock(), "srv", 1.0, 1.0, 5.0)
        await server.start(None)  # type: ignore[arg-type]
        try:
            reader, writer = await asyncio.open_connection(*server.address)
            cap_backoff(writer)
            mine = writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS)
            theirs = await asyncio.wait_for(accepted, 5)
            writer.close()
        finally:
            await server.stop()
        return mine, theirs

    assert asyncio.run(main()) == (RTO_MAX_MS, RTO_MAX_MS)
