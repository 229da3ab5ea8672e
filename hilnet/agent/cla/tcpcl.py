"""TCPCLv4 convergence layer (RFC 9174) for the agent: a thin asyncio driver.

All protocol logic lives in :mod:`hilnet.agent.cla.tcpcl_session`; this module
only moves octets between TCP sockets and :class:`TcpclSession` objects, keeps
time with the injected clock and talks to the agent through the
:class:`~hilnet.agent.cla.base.BundleSink` contract:

- ``send()`` returns once the peer's XFER_ACK covers the whole bundle; it
  raises :class:`~hilnet.errors.TransferRefusedError` on XFER_REFUSE and
  :class:`~hilnet.errors.ClaError` when the session dies first. An
  interrupted transfer is *not* resumed: the agent sends the bundle again
  (on the next session) and the receiving agent drops the duplicate by
  bundle id.
- A received bundle is handed to the agent by
  :func:`~hilnet.agent.cla.base.deliver_to_sink`; its final XFER_ACK goes
  out only once that accepted it, so the peer keeps its copy until ours is
  committed. ``StoreFullError`` becomes XFER_REFUSE "No Resources" (0x02),
  any other failure "Retransmit" (0x03). While the agent commits, the
  driver reads no further octets from that session.
- For every configured peer a connector keeps one active session up, with
  backoff (RFC 9174 4.1); any peer may also connect to our listener.
- Classes of service (docs/cla.md): a connector keeps two sessions per peer;
  bulk and standard bundles go on the oldest session up, an expedited one on
  the youngest that carries nothing of a lower class (both sides alike).
- TLS (docs/cla.md): the session decides, :mod:`~hilnet.agent.cla.tcpcl_tls`
  runs the handshake; a failed or refused negotiation reaches the agent as ``tls_failed``.
- The agent's limits (:mod:`~hilnet.agent.cla.limits`) bound each session.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping

from hilnet.agent.cla.base import BundleSink, deliver_to_sink
from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.tcpcl_driver import SessionConn, TcpclDriver
from hilnet.agent.cla.tcpcl_events import (
    NS_PER_S,
    Event,
    LimitReached,
    SessionConfig,
    SessionEnded,
    SessionUp,
    StartTls,
    TlsFailed,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)
from hilnet.agent.cla.tcpcl_messages import DEFAULT_PORT, RefuseReason, TermReason, reason_name
from hilnet.agent.cla.tcpcl_security import TlsPolicy
from hilnet.agent.cla.tcpcl_session import TcpclSession
from hilnet.agent.cla.tcpcl_tls import TlsContexts, TlsFiles, failure_reason, handshake
from hilnet.clock import Clock
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20  # bytes per read(): big reads keep Python overhead per byte low


class _Conn(SessionConn):
    """One TCP connection and the session on it."""

    session: TcpclSession

    def __init__(
        self,
        cla: TcpclCla,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        active: bool,
        expected_peer: str | None,
    ):
        super().__init__(cla.clock)
        self.cla = cla
        self.reader = reader
        self.writer = writer
        now = cla.clock.now_ns()
        addr = writer.get_extra_info("peername") or ("?", 0)
        self.address = f"{addr[0]}:{addr[1]}"
        hold = cla.resources.holding(writer.transport.abort, self.address, cla.name)  # evicted: the connection closes
        self.session = TcpclSession(cla.session_config, active, now, expected_peer, hold)
        self.end_reason = ""
        self._start_tls: StartTls | None = None

    # --- agent side (send, run: SessionConn) -------------------------------------

    def terminate(self) -> None:
        self._handle(self.session.terminate(TermReason.UNKNOWN, self.cla.clock.now_ns()))
        self._poke()

    # --- loops (writer and timer: SessionConn) -------------------------------------

    async def _read_loop(self) -> None:
        clock = self.cla.clock
        while not self.session.closed:
            try:
                data = await self.reader.read(_READ_SIZE)
            except (ConnectionError, OSError) as exc:
                log.info("tcpcl %s: read failed: %s", self.address, exc)
                if isinstance(exc, ssl.SSLError):  # e.g. the peer's alert: it refused our certificate
                    self._handle(self.session.tls_failed(failure_reason(exc), clock.now_ns()))
                data = b""
            if not data:
                self._handle(self.session.receive_eof(clock.now_ns()))
                break
            received = self._handle(self.session.receive_data(data, clock.now_ns()))
            if self._start_tls is not None:  # no await between the read and this: see tcpcl_tls
                tls, self._start_tls = self._start_tls, None
                self._handle(await handshake(self.session, self.writer, self.cla.tls_contexts, tls, clock))
            # The transfers of one read commit together (one group commit, not one fsync each);
            # each is still acked only after its own commit.
            await asyncio.gather(*(self._deliver(ev) for ev in received))
            self._poke()

    async def _deliver(self, ev: TransferReceived) -> None:
        cla = self.cla
        result = await deliver_to_sink(cla.sink, ev.data, cla.name, self.peer, cla.stats)
        if result.accepted:
            self._handle(self.session.accept_transfer(ev.transfer_id, cla.clock.now_ns()))
            return
        # Store full: "No Resources", try later. Any other failure is ours, not the bundle's: "Retransmit".
        reason = RefuseReason.NO_RESOURCES if isinstance(result.error, StoreFullError) else RefuseReason.RETRANSMIT
        self._handle(self.session.refuse_transfer(ev.transfer_id, reason, cla.clock.now_ns()))

    def _handle(self, events: list[Event]) -> list[TransferReceived]:
        """Act on session events; returns the bundles to hand to the agent, in order."""
        received: list[TransferReceived] = []
        for ev in events:
            if isinstance(ev, TransferReceived):
                received.append(ev)
            elif isinstance(ev, TransferAcked) and ev.final:  # a partial ack changes nothing here
                self.cla.stats["bundles_sent"] += 1
                self._resolve(ev.transfer_id, None)
            elif isinstance(ev, TransferRefused):
                self.cla.stats["transfers_refused_by_peer"] += 1
                self._resolve(
                    ev.transfer_id,
                    TransferRefusedError(f"{self.peer} refused the bundle: {reason_name(RefuseReason, ev.reason)}"),
                )
            elif isinstance(ev, TransferFailed):
                self._resolve(ev.transfer_id, ClaError(f"transfer to {self.peer} failed: {ev.reason}"))
            elif isinstance(ev, StartTls):
                self._start_tls = ev
            elif isinstance(ev, TlsFailed):
                self.cla.stats["tls_failed"] += 1
                log.info("tcpcl %s: %s", self.address, ev.reason)  # the agent emits it as an event
                certified = ", ".join(ev.certified) or None
                self.cla.sink.tls_failed(self.cla.name, ev.reason, ev.claimed, certified, self.address)
            elif isinstance(ev, LimitReached):
                self.cla.resources.hit(self.cla.name, ev.limit, ev.detail, self.peer or self.address)
            elif isinstance(ev, Violation):
                self.cla.stats[ev.reason] += 1
                log.warning("tcpcl %s (%s): %s %s", self.peer or "?", self.address, ev.reason, ev.detail)
            elif isinstance(ev, SessionUp):
                self.peer = ev.peer_node_id or f"tcpcl://{self.address}"
                self.was_up = True
                self.cla.stats["sessions_up"] += 1
                if self.cla._register(self):  # the agent hears of a peer, not of each of its sessions
                    p = ev.params
                    detail = {"address": self.address, "active": self.session.active, "keepalive_s": p.keepalive_s}
                    detail |= {"peer_segment_mru": p.peer_segment_mru, "peer_transfer_mru": p.peer_transfer_mru}
                    self.cla.sink.session_changed(self.cla.name, self.peer, True, detail | {"tls": p.tls})
            elif isinstance(ev, SessionEnded):
                self.end_reason = ev.reason
                self.cla.stats["sessions_ended_clean" if ev.clean else "sessions_failed"] += 1
                for tid in list(self._pending):
                    self._resolve(tid, ClaError(f"TCPCL session to {self.peer} ended: {ev.reason}"))
                if self.was_up and self.cla._unregister(self):
                    self.cla.sink.session_changed(
                        self.cla.name, self.peer or self.address, False, {"reason": ev.reason, "clean": ev.clean}
                    )
                self._done.set()
        return received


class TcpclCla(TcpclDriver):
    """TCPCLv4 convergence layer: one listener, one connector per configured peer.

    ``listen`` is ``(host, port)`` to accept sessions on (port 4556 by default;
    port 0 picks a free one, see :attr:`address`) or ``None``. ``peers`` maps
    node ids to the ``(host, port)`` this node actively keeps a session with.
    Configure a pair on one side only, or two sessions join them (harmless:
    either carries bundles). ``keepalive_s`` is the offered Keepalive Interval
    (s); ``segment_mru``/``transfer_mru`` bound what we accept and
    ``max_segment`` what we send (bytes). ``tls`` is the node's policy and
    ``tls_files`` its certificate, key and CA (needed unless the policy is off).
    """

    def __init__(
        self,
        node_id: str,
        listen: tuple[str, int] | None = ("0.0.0.0", DEFAULT_PORT),
        peers: Mapping[str, tuple[str, int]] | None = None,
        clock: Clock | None = None,
        keepalive_s: int = 10,
        segment_mru: int = 4 << 20,
        transfer_mru: int = 256 << 20,
        max_segment: int = 1 << 20,
        name: str = "tcpcl",
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 10.0,
        handshake_timeout_s: float = 10.0,
        expedited_session: bool = True,
        tls: TlsPolicy = TlsPolicy.OFF,
        tls_files: TlsFiles | None = None,
        resources: Resources | None = None,
    ):
        super().__init__(
            node_id, listen, peers, clock, name, reconnect_min_s, reconnect_max_s, handshake_timeout_s, resources
        )
        self.session_config = SessionConfig(
            node_id=node_id,
            keepalive_s=keepalive_s,
            segment_mru=segment_mru,
            transfer_mru=transfer_mru,
            max_segment=max_segment,
            handshake_timeout_ns=int(handshake_timeout_s * NS_PER_S),
            tls=tls,
            **self.resources.session_fields(),
        )
        if tls is not TlsPolicy.OFF and tls_files is None:
            raise ClaError(f"tcpcl: TLS policy {tls.value} needs a certificate, a key and a CA")
        self.tls_contexts = TlsContexts(tls_files) if tls_files is not None and tls is not TlsPolicy.OFF else None
        self.close_timeout_s = self.session_config.term_timeout_ns / NS_PER_S
        self.expedited_session = expedited_session

    async def start(self, sink: BundleSink) -> None:
        await super().start(sink)
        if self.expedited_session:
            for peer, addr in self.peers.items():
                self._spawn(self._connector(peer, addr))  # the second session, for expedited bundles

    def _new_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool, expected_peer: str | None
    ) -> _Conn:
        return _Conn(self, reader, writer, active, expected_peer)
