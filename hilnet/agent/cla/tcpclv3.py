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
import socket
from collections.abc import Mapping

from hilnet.agent.cla.base import deliver_to_sink
from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.tcp_base import TcpClaBase, close_stream
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
from hilnet.bundle.cos import DEFAULT_RANK, Priority, class_of_rank
from hilnet.clock import Clock
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20  # bytes per read()
MAX_PEER_DELAY_S = 3600  # a reconnection delay asked for is honoured up to this (s)


class _Conn:
    """One TCP connection and the session on it."""

    def __init__(self, cla: TcpclV3Cla, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool):
        self.cla = cla
        self.reader = reader
        self.writer = writer
        addr = writer.get_extra_info("peername") or ("?", 0)
        self.address = f"{addr[0]}:{addr[1]}"
        hold = cla.resources.holding(writer.transport.abort, self.address, cla.name)  # evicted: the connection closes
        self.session = TcpclV3Session(cla.session_config, active, cla.clock.now_ns(), None, hold)
        self.peer: str | None = None  # the peer's EID once the session is up
        self.was_up = False
        self.delay_s = 0  # the reconnection delay the peer asked for
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ranks: dict[int, int] = {}  # ticket -> rank of every bundle not finished
        self._wake = asyncio.Event()  # output is waiting
        self._kick = asyncio.Event()  # a deadline moved earlier
        self._sleeping_until: int | None = None
        self._done = asyncio.Event()  # the session ended
        self.closed = asyncio.Event()  # ...and its last octets (a SHUTDOWN) were written

    async def send(self, data: bytes, rank: int) -> None:
        ticket = self.session.start_transfer(data, self.cla.clock.now_ns(), rank)
        fut = asyncio.get_running_loop().create_future()
        self._pending[ticket] = fut
        self._ranks[ticket] = rank
        self._poke()
        try:
            await fut
        finally:
            self._pending.pop(ticket, None)
            self._ranks.pop(ticket, None)

    def carries_below(self, klass: Priority) -> bool:
        """Whether a bundle of a class below ``klass`` is queued or under way here."""
        return any(class_of_rank(r) < klass for r in self._ranks.values())

    def terminate(self) -> None:
        self._handle(self.session.terminate(self.cla.clock.now_ns()))
        self._poke()

    async def run(self) -> None:
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # acks must not wait for Nagle
        self._poke()
        tasks = [asyncio.create_task(t) for t in (self._read_loop(), self._write_loop(), self._timer_loop())]
        try:
            await self._done.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            last = [] if self.writer.transport.is_closing() else self.session.data_to_send(self.cla.clock.now_ns())
            try:
                await close_stream(self.writer, last)
            finally:
                self.closed.set()

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

    async def _write_loop(self) -> None:
        clock = self.cla.clock
        while True:
            chunks = self.session.data_to_send(clock.now_ns())
            if chunks:
                for c in chunks:
                    self.writer.write(c)
                await self.writer.drain()
                self._poke()  # a segment sent may have started the transfer timeout
                continue
            if self.session.closed:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _timer_loop(self) -> None:
        clock = self.cla.clock
        while not self.session.closed:
            deadline = self.session.next_deadline_ns()
            self._sleeping_until = deadline
            self._kick.clear()
            waits: set[asyncio.Task[object]] = {asyncio.create_task(self._kick.wait())}
            if deadline is not None:
                waits.add(asyncio.create_task(clock.wait_until_ns(deadline)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in waits:
                    t.cancel()
            self._handle(self.session.handle_timer(clock.now_ns()))
            self._poke()

    def _poke(self) -> None:
        self._wake.set()
        d = self.session.next_deadline_ns()
        if d != self._sleeping_until and (d is None or self._sleeping_until is None or d < self._sleeping_until):
            self._kick.set()
        if self.session.closed:
            self._kick.set()

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

    def _resolve(self, ticket: int, exc: Exception | None) -> None:
        fut = self._pending.pop(ticket, None)
        if fut is not None and not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)


class TcpclV3Cla(TcpClaBase):
    """TCPCLv3 convergence layer: one listener, one connector per configured peer.

    ``listen`` is ``(host, port)`` (port 4556 by default; 0 picks a free one,
    see :attr:`address`) or None; ``peers`` maps EIDs to the ``(host, port)``
    this node keeps a session with. ``keepalive_s`` is the offered keepalive
    interval (s); ``transfer_mru`` bounds the bundles we take and send, and
    ``max_segment`` the segments we send (bytes).
    """

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
        self._conns: set[_Conn] = set()
        self._up: dict[str, list[_Conn]] = {}  # peer -> sessions up, oldest first

    def peers_up(self) -> set[str]:
        return {peer for peer, conns in self._up.items() if any(c.session.established for c in conns)}

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Send one bundle to ``peer``; returns when its acks cover all of it."""
        conns = [c for c in self._up.get(peer, ()) if c.session.established]
        if not conns:
            raise ClaError(f"no TCPCLv3 session to {peer}")
        conn = conns[0]
        klass = class_of_rank(rank)
        if klass is Priority.EXPEDITED:
            free = [c for c in conns if not c.carries_below(klass)]
            conn = free[-1] if free else conns[-1]
        await conn.send(data, rank)

    # --- internals -------------------------------------------------------------

    async def _close_connections(self) -> None:
        for conn in list(self._conns):
            conn.terminate()
        # Until each has written its SHUTDOWN: stop() cancels the connection tasks next.
        waits = [asyncio.create_task(c.closed.wait()) for c in self._conns]
        if waits:
            await asyncio.wait(waits, timeout=2.0)
            for t in waits:
                t.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            writer.close()
            return
        self._track_current_task()
        await self._run(_Conn(self, reader, writer, active=False))

    async def _run(self, conn: _Conn) -> None:
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)
            if conn.peer and conn in self._up.get(conn.peer, ()):
                self._unregister(conn)

    async def _run_outgoing(
        self, peer: str, addr: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        conn = _Conn(self, reader, writer, active=True)
        await self._run(conn)
        if conn.delay_s:  # RFC 7242 6.1: the peer asked us to wait before we reconnect
            self.stats["reconnect_delays"] += 1
            await self.clock.wait_until_ns(self.clock.now_ns() + conn.delay_s * NS_PER_S)
        return conn.was_up  # only a session that came up resets the backoff

    def _register(self, conn: _Conn) -> bool:
        """Add an established session; True if it is the peer's first (the peer just came up)."""
        conns = self._up.setdefault(conn.peer or "", [])
        conns.append(conn)
        return len(conns) == 1

    def _unregister(self, conn: _Conn) -> bool:
        """Remove a session; True if it was the peer's last (the peer is gone)."""
        conns = self._up.get(conn.peer or "", [])
        if conn not in conns:
            return False
        conns.remove(conn)
        if not conns:
            self._up.pop(conn.peer or "", None)
        return not conns
