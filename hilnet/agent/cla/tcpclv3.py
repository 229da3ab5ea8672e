"""TCPCLv3 convergence layer (RFC 7242) for the agent: a thin asyncio driver.

The protocol lives in :mod:`hilnet.agent.cla.tcpclv3_session`; this module
moves octets between TCP sockets and :class:`TcpclV3Session` objects, keeps
time with the injected clock and talks to the agent through the
:class:`~hilnet.agent.cla.base.BundleSink` contract, as the TCPCLv4 driver does:

- ``send()`` returns once the peer's acks cover the whole bundle; it raises
  :class:`~hilnet.errors.TransferRefusedError` on REFUSE_BUNDLE and
  :class:`~hilnet.errors.ClaError` when the session ends first (the agent
  keeps the bundle and sends it again; the receiver drops a duplicate).
- A received bundle goes to the agent through
  :func:`~hilnet.agent.cla.base.deliver_to_sink`; its final ACK_SEGMENT goes
  out only once the agent committed it. A refusal is REFUSE_BUNDLE where both
  sides offered it, else SHUTDOWN "busy" (ION offers no refusal). While the
  agent commits, the driver reads nothing more from that session.
- One connector per configured peer keeps a session up, with the backoff of
  :class:`~hilnet.agent.cla.tcp_base.TcpClaBase`, and waits at least the
  reconnection delay a peer's SHUTDOWN asked for; any peer may also connect
  to our listener (ION dials the nodes of its own contact plan).
- Classes of service: one session per peer (ION takes one accepted session
  per neighbour, so a second for expedited bundles is not an option); the
  session sends its queued bundles by rank. With two sessions up to a peer
  (both sides dialled), an expedited bundle takes the one that carries
  nothing of a lower class.
- The agent's limits (:mod:`~hilnet.agent.cla.limits`) bound each session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from hilnet.agent.cla.base import deliver_to_sink
from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.tcpcl_driver import SessionConn, TcpclDriver
from hilnet.agent.cla.tcpcl_messages import reason_name
from hilnet.agent.cla.tcpclv3_events import (
    NS_PER_S,
    LimitReached,
    PeerShutdown,
    SessionConfig,
    SessionEnded,
    SessionUp,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)
from hilnet.agent.cla.tcpclv3_messages import DEFAULT_PORT, RefuseReason
from hilnet.agent.cla.tcpclv3_session import TcpclV3Session
from hilnet.clock import Clock
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20  # bytes per read()
MAX_PEER_DELAY_S = 3600  # a reconnection delay asked for is honoured up to this (s)


class _Conn(SessionConn):
    """One TCP connection and the session on it."""

    session: TcpclV3Session

    def __init__(self, cla: TcpclV3Cla, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool):
        super().__init__(cla.clock)
        self.cla = cla
        self.reader = reader
        self.writer = writer
        addr = writer.get_extra_info("peername") or ("?", 0)
        self.address = f"{addr[0]}:{addr[1]}"
        hold = cla.resources.holding(writer.transport.abort, self.address, cla.name)  # evicted: the connection closes
        self.session = TcpclV3Session(cla.session_config, active, cla.clock.now_ns(), None, hold)
        self.delay_s = 0  # the reconnection delay the peer asked for

    def terminate(self) -> None:
        self._handle(self.session.terminate(self.cla.clock.now_ns()))
        self._poke()

    async def _read_loop(self) -> None:
        clock = self.cla.clock
        while not self.session.closed:
            try:
                data = await self.reader.read(_READ_SIZE)
            except (ConnectionError, OSError) as exc:
                log.info("tcpclv3 %s: read failed: %s", self.address, exc)
                data = b""
            if not data:
                self._handle(self.session.receive_eof(clock.now_ns()))
                break
            received = self._handle(self.session.receive_data(data, clock.now_ns()))
            await asyncio.gather(*(self._deliver(ev) for ev in received))  # one group commit per read
            self._poke()

    async def _deliver(self, ev: TransferReceived) -> None:
        cla = self.cla
        result = await deliver_to_sink(cla.sink, ev.data, cla.name, self.peer, cla.stats)
        now = cla.clock.now_ns()
        if result.accepted:
            self._handle(self.session.accept_transfer(ev.transfer_id, now))
            return
        reason = RefuseReason.NO_RESOURCES if isinstance(result.error, StoreFullError) else RefuseReason.RETRANSMIT
        self._handle(self.session.refuse_transfer(ev.transfer_id, reason, now))

    def _handle(self, events: list) -> list[TransferReceived]:
        """Act on session events; returns the bundles to hand to the agent, in order."""
        received: list[TransferReceived] = []
        stats = self.cla.stats
        for ev in events:
            if isinstance(ev, TransferReceived):
                received.append(ev)
            elif isinstance(ev, TransferAcked) and ev.final:
                stats["bundles_sent"] += 1
                self._resolve(ev.transfer_id, None)
            elif isinstance(ev, TransferRefused):
                stats["transfers_refused_by_peer"] += 1
                why = reason_name(RefuseReason, ev.reason)
                self._resolve(ev.transfer_id, TransferRefusedError(f"{self.peer} refused the bundle: {why}"))
            elif isinstance(ev, TransferFailed):
                self._resolve(ev.transfer_id, ClaError(f"transfer to {self.peer} failed: {ev.reason}"))
            elif isinstance(ev, LimitReached):
                self.cla.resources.hit(self.cla.name, ev.limit, ev.detail, self.peer or self.address)
            elif isinstance(ev, Violation):
                stats[ev.reason] += 1
                log.warning("tcpclv3 %s (%s): %s %s", self.peer or "?", self.address, ev.reason, ev.detail)
            elif isinstance(ev, PeerShutdown):
                stats["peer_shutdowns"] += 1
                self.delay_s = min(ev.delay_s or 0, MAX_PEER_DELAY_S)
            elif isinstance(ev, SessionUp):
                self._up(ev)
            elif isinstance(ev, SessionEnded):
                self._ended(ev)
        return received

    def _up(self, ev: SessionUp) -> None:
        self.peer = ev.peer_eid or f"tcpclv3://{self.address}"
        self.was_up = True
        self.cla.stats["sessions_up"] += 1
        if self.cla._register(self):  # the agent hears of a peer, not of each of its sessions
            p = ev.params
            detail = {"address": self.address, "active": self.session.active, "keepalive_s": p.keepalive_s}
            self.cla.sink.session_changed(self.cla.name, self.peer, True, detail | {"refusals": p.refusals})

    def _ended(self, ev: SessionEnded) -> None:
        self.cla.stats["sessions_ended_clean" if ev.clean else "sessions_failed"] += 1
        for ticket in list(self._pending):
            self._resolve(ticket, ClaError(f"TCPCLv3 session to {self.peer} ended: {ev.reason}"))
        if self.was_up and self.cla._unregister(self):
            detail = {"reason": ev.reason, "clean": ev.clean}
            self.cla.sink.session_changed(self.cla.name, self.peer or self.address, False, detail)
        self._done.set()


class TcpclV3Cla(TcpclDriver):
    """TCPCLv3 convergence layer: one listener, one connector per configured peer.

    ``listen`` is ``(host, port)`` (port 4556 by default; 0 picks a free one,
    see :attr:`address`) or None; ``peers`` maps EIDs to the ``(host, port)``
    this node keeps a session with. ``keepalive_s`` is the offered keepalive
    interval (s); ``transfer_mru`` bounds the bundles we take and send, and
    ``max_segment`` the segments we send (bytes).
    """

    label = "TCPCLv3"
    close_timeout_s = 2.0  # a SHUTDOWN is never answered: only its write and the close to wait for

    def __init__(
        self,
        node_id: str,
        listen: tuple[str, int] | None = ("0.0.0.0", DEFAULT_PORT),
        peers: Mapping[str, tuple[str, int]] | None = None,
        clock: Clock | None = None,
        keepalive_s: int = 10,
        transfer_mru: int = 256 << 20,
        max_segment: int = 1 << 20,
        name: str = "tcpclv3",
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 10.0,
        handshake_timeout_s: float = 10.0,
        resources: Resources | None = None,
    ):
        super().__init__(
            node_id, listen, peers, clock, name, reconnect_min_s, reconnect_max_s, handshake_timeout_s, resources
        )
        fields = self.resources.session_fields()
        self.session_config = SessionConfig(
            node_id=node_id,
            keepalive_s=keepalive_s,
            transfer_mru=transfer_mru,
            max_segment=max_segment,
            handshake_timeout_ns=int(handshake_timeout_s * NS_PER_S),
            **fields,
        )

    def _new_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool, expected_peer: str | None
    ) -> _Conn:
        return _Conn(self, reader, writer, active)

    async def _after_session(self, conn: SessionConn) -> None:
        delay_s = conn.delay_s if isinstance(conn, _Conn) else 0
        if delay_s:  # RFC 7242 6.1: the peer asked us to wait before we reconnect
            self.stats["reconnect_delays"] += 1
            await self.clock.wait_until_ns(self.clock.now_ns() + delay_s * NS_PER_S)
