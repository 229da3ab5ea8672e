"""One TCPCLv4 session (RFC 9174) as a sans-I/O state machine.

The driver feeds it what TCP delivered (:meth:`TcpclSession.receive_data`,
:meth:`~TcpclSession.receive_eof`), the passing of time
(:meth:`~TcpclSession.handle_timer` at :meth:`~TcpclSession.next_deadline_ns`)
and the agent's decisions (:meth:`~TcpclSession.start_transfer`,
:meth:`~TcpclSession.accept_transfer`, :meth:`~TcpclSession.refuse_transfer`,
:meth:`~TcpclSession.terminate`). Each call returns the events it caused; the
octets to write are pulled with :meth:`~TcpclSession.data_to_send`, one whole
message (or one segment) at a time, so control messages (acks, keepalives)
slip in between the segments of a long transfer and a SESS_TERM is never
written in the middle of a message. All times are int ns of the driver's clock.

Choices the RFC leaves to us, in one place:

- TLS follows ``SessionConfig.tls`` (off, enable, require): the handshake,
  TLS included, is :mod:`~hilnet.agent.cla.tcpcl_handshake`; the policy
  decisions are :mod:`~hilnet.agent.cla.tcpcl_security`.
- Liveness (handshake, keepalive, idle, SESS_TERM-reply, partial-transfer
  and transfer timeouts) is :mod:`~hilnet.agent.cla.tcpcl_liveness`.
- Outgoing transfers (:mod:`~hilnet.agent.cla.tcpcl_send`) are pipelined
  (the next one starts while the previous waits for its final ack) and never
  interleaved. A transfer is finished only by an XFER_ACK whose length covers
  the whole bundle.
- Incoming data (:mod:`~hilnet.agent.cla.tcpcl_recv`) is acknowledged per
  segment once buffered; the final XFER_ACK waits for :meth:`accept_transfer`,
  i.e. for the agent's commit. A transfer cut short by the end of the session
  is dropped, never delivered.
- Transfer ids seen in this session are remembered (the last
  ``SessionConfig.remembered_ids`` of them) so a reused id is refused
  ("Completed"), not delivered twice.
"""

from __future__ import annotations

from hilnet.agent.cla.tcpcl_events import Event, Outbox, SessionConfig, SessionEnded, SessionParams, TlsFailed
from hilnet.agent.cla.tcpcl_handshake import Handshake, State
from hilnet.agent.cla.tcpcl_liveness import STALLED, Due, Liveness, stalled_events
from hilnet.agent.cla.tcpcl_messages import (
    Keepalive,
    Message,
    MsgReject,
    MsgType,
    RefuseReason,
    RejectReason,
    SegmentHeader,
    SessInit,
    SessTerm,
    TermReason,
    XferAck,
    XferRefuse,
    reason_name,
)
from hilnet.agent.cla.tcpcl_recv import TransferReceiver
from hilnet.agent.cla.tcpcl_security import contact_flags
from hilnet.agent.cla.tcpcl_send import TransferSender
from hilnet.agent.cla.tcpcl_wire import (
    KEEPALIVE_BYTES,
    encode_contact_header,
    encode_msg_reject,
    encode_sess_term,
    parse_contact_header,
    parse_message,
)
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.errors import ClaError, TooBigForPeerError, WireError

_AWAITED = {State.CONTACT: "contact header", State.TLS: "TLS handshake", State.SESS_INIT: "SESS_INIT"}


class TcpclSession(Handshake):
    """Both directions of one TCPCLv4 session, without I/O."""

    def __init__(self, config: SessionConfig, active: bool, now_ns: int, expected_peer: str | None = None, hold=None):
        self.config = config
        self.active = active
        self.expected_peer = expected_peer  # the node id an active side meant to reach
        self.state = State.CONTACT
        self.params: SessionParams | None = None
        self._out = Outbox()
        self._buf = bytearray()  # an incomplete message header carried between reads
        self._sent_ch = False
        self._sent_init = False
        self._sent_term = False
        self._peer_term = False
        self._term_reason = ""
        self._send = TransferSender(config, self._out)
        self._recv = TransferReceiver(config, self._out, hold)  # hold: the connection's share of the budget
        self._timers = Liveness(config, now_ns, self._send, self._recv)
        self._tls = False
        self._certified: tuple[str, ...] = ()
        self._peer_flags = 0
        if active:
            self._send_ctl(encode_contact_header(contact_flags(config.tls)))
            self._sent_ch = True

    # --- public API ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    def receive_data(self, data: bytes | bytearray | memoryview, now_ns: int) -> list[Event]:
        """Octets from TCP, in order. Never raises for bad input: see Violation events."""
        if self.state is State.CLOSED or not data:
            return self._out.take_events()
        self._timers.received(now_ns)
        src: bytes | bytearray | memoryview = data
        if self._buf:
            self._buf += data
            src = bytes(self._buf)
            self._buf = bytearray()
        mv = memoryview(src)
        pos, n = 0, len(mv)
        recv = self._recv
        while pos < n and not self.closed:  # a message may end the session
            if recv.seg_left:
                pos += recv.segment_data(mv[pos:])
                continue
            try:
                if self.state is State.CONTACT:
                    ch = parse_contact_header(mv[pos:])
                    if ch is None:
                        break
                    pos += 6
                    if self._on_contact_header(ch) and pos < n:
                        # Nothing may follow the Contact Header but the TLS handshake.
                        self._fail("plaintext_before_tls", f"{n - pos} octets after the contact header", None)
                    continue
                parsed = parse_message(mv[pos:], self.config.max_ext_len)
            except WireError as exc:
                self._on_wire_error(exc)
                break
            if parsed is None:
                break
            msg, used = parsed
            pos += used
            self._on_message(msg, now_ns)
        if pos < n and not self.closed:
            self._buf = bytearray(mv[pos:])
        self._timers.observe(now_ns)
        return self._out.take_events()

    def receive_eof(self, now_ns: int) -> list[Event]:
        """The peer closed TCP (or the connection broke)."""
        if self.state is not State.CLOSED:
            clean = self._sent_term and self._peer_term and not self._busy()
            self._end(self._term_reason if clean else "connection closed by peer", clean)
        return self._out.take_events()

    def start_transfer(self, data: bytes | bytearray | memoryview, now_ns: int, rank: int = DEFAULT_RANK) -> int:
        """Queue one bundle; returns its ticket. Raises ClaError if it cannot go now.

        ``data`` is not copied: it must not change until the transfer ends.
        ``rank`` (class of service) lets it overtake queued transfers that have
        not begun. Events about the transfer name the ticket (the transfer id
        unless it overtook another, see :mod:`~hilnet.agent.cla.tcpcl_send`).
        """
        if self.state is not State.ESTABLISHED or self.params is None:
            raise ClaError(f"TCPCL session is {self.state.value}, not established")
        if len(data) > self.params.peer_transfer_mru:
            raise TooBigForPeerError(
                f"bundle of {len(data)} bytes is above the peer's transfer MRU of {self.params.peer_transfer_mru}"
            )
        if self.params.peer_segment_mru == 0 and len(data):
            raise ClaError("the peer's segment MRU is 0: it takes no data")
        if self._send.exhausted:
            self.terminate(TermReason.RESOURCE_EXHAUSTION, now_ns)
            raise ClaError("transfer ids of this session are exhausted")
        return self._send.queue(data, rank)

    def accept_transfer(self, transfer_id: int, now_ns: int) -> list[Event]:
        """The agent committed a received bundle: send its final XFER_ACK."""
        if self._recv.accept(transfer_id):  # nothing waits once the session closed
            self._timers.resumed(now_ns)
            self._maybe_finish()
        return self._out.take_events()

    def refuse_transfer(self, transfer_id: int, reason: RefuseReason, now_ns: int) -> list[Event]:
        """The agent did not take a received bundle (store full: NO_RESOURCES)."""
        if self._recv.refuse(transfer_id, reason):
            self._timers.resumed(now_ns)
            self._maybe_finish()
        return self._out.take_events()

    def terminate(self, reason: TermReason = TermReason.UNKNOWN, now_ns: int = 0) -> list[Event]:
        """Begin a clean end: SESS_TERM, finish what is in flight, then SessionEnded."""
        if self.state in (State.ESTABLISHED, State.ENDING):
            if not self._sent_term:
                self._send_term(reason, now_ns, reply=False)
                self._term_reason = f"local: {reason_name(TermReason, reason)}"
            self._maybe_finish()
        elif self.state is not State.CLOSED:
            if self._sent_ch:
                self._send_ctl(encode_sess_term(reason))
            self._end("terminated before the session was up", clean=False)
        return self._out.take_events()

    def data_to_send(self, now_ns: int) -> list[bytes | memoryview]:
        """Next octets to write: all queued control messages, then at most one segment."""
        ctl = self._out.ctl
        out: list[bytes | memoryview] = list(ctl)
        ctl.clear()
        if self.state in (State.ESTABLISHED, State.ENDING) and self.params is not None:
            seg = self._send.next_segment(self.state is State.ESTABLISHED, self.params.peer_segment_mru)
            if seg:
                out.extend(seg)
        if out:
            self._timers.sent(now_ns)
        return out

    def next_deadline_ns(self) -> int | None:
        """When handle_timer() must next run (ns), or None."""
        if self.state is State.CLOSED:
            return None
        return self._timers.next_deadline_ns(self._recv.awaiting_commit)

    def handle_timer(self, now_ns: int) -> list[Event]:
        """Act on whatever deadline has passed at ``now_ns`` (early calls do nothing)."""
        if self.state is State.CLOSED:
            return self._out.take_events()
        due = self._timers.due(now_ns, self._recv.awaiting_commit)
        if due is Due.HANDSHAKE:
            if self.state is State.SESS_INIT:
                self._send_ctl(encode_sess_term(TermReason.CONTACT_FAILURE))
            elif self.state is State.TLS:  # a TLS negotiation that failed, like any other: say so
                self._out.events.append(TlsFailed("no TLS handshake in time", self.expected_peer))
            self._end(f"no {_AWAITED[self.state]} in time", False)
        elif due in STALLED:
            if not self._sent_term:
                self._send_ctl(encode_sess_term(TermReason.IDLE_TIMEOUT))
                self._sent_term = True
            self._out.events += stalled_events(due)
            self._end(STALLED[due], clean=False)
        elif due is Due.TERM_REPLY:
            self._end(f"{self._term_reason}; no SESS_TERM reply in time", clean=False)
        elif due is Due.KEEPALIVE:
            self._send_ctl(KEEPALIVE_BYTES)
            self._timers.sent(now_ns)  # due again one interval later even if the write stalls
        return self._out.take_events()

    # --- messages -----------------------------------------------------------

    def _on_message(self, msg: Message, now_ns: int) -> None:
        if isinstance(msg, SessTerm):
            self._on_sess_term(msg, now_ns)
        elif isinstance(msg, MsgReject):
            self._out.violation(
                f"peer_rejected_{reason_name(RejectReason, msg.reason)}",
                f"our message type 0x{msg.rejected_header:02x}",
            )
        elif self.state is State.SESS_INIT:
            if isinstance(msg, SessInit):
                self._on_sess_init(msg, now_ns)
            else:
                self._out.reject(RejectReason.MESSAGE_UNEXPECTED, msg.TYPE, "message_before_sess_init")
                self._fail("message_before_sess_init", type(msg).__name__, TermReason.CONTACT_FAILURE)
        elif isinstance(msg, SegmentHeader):
            if msg.length > self.config.segment_mru:
                self._fail(
                    "segment_mru_exceeded",
                    f"segment of {msg.length} bytes, our MRU is {self.config.segment_mru}",
                    TermReason.RESOURCE_EXHAUSTION,
                )
            else:
                self._recv.on_segment(msg, ending=self.state is State.ENDING)
        elif isinstance(msg, XferAck):
            if self._send.on_ack(msg):
                self._maybe_finish()
        elif isinstance(msg, XferRefuse):
            if self._send.on_refuse(msg):
                self._maybe_finish()
        elif isinstance(msg, Keepalive):
            pass  # receiving it already refreshed the idle timer
        elif isinstance(msg, SessInit):
            self._out.reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.SESS_INIT, "sess_init_again")

    def _on_sess_term(self, msg: SessTerm, now_ns: int) -> None:
        if self.state is State.SESS_INIT:
            # e.g. the peer requires TLS, or refuses our parameters
            why = self._peer_refused_early() if msg.reason == TermReason.CONTACT_FAILURE else None
            self._end(why or f"peer: {reason_name(TermReason, msg.reason)} (before session up)", clean=False)
            return
        self._peer_term = True
        self._timers.term_heard()
        if not self._sent_term:
            self._term_reason = f"peer: {reason_name(TermReason, msg.reason)}"
            self._send_term(msg.reason, now_ns, reply=True)  # identical content, REPLY set
        self._maybe_finish()

    # --- endings and errors ---------------------------------------------------

    def _busy(self) -> bool:
        return self._send.busy or self._recv.busy

    def _send_term(self, reason: int, now_ns: int, reply: bool) -> None:
        self._send_ctl(encode_sess_term(reason, reply=reply))
        self._sent_term = True
        self.state = State.ENDING
        if not reply:
            self._timers.term_sent(now_ns)
        self._send.drop_unstarted()

    def _maybe_finish(self) -> None:
        if self.state is State.ENDING:
            if self._sent_term and self._peer_term and not self._busy():
                self._end(self._term_reason, clean=True)

    def _end(self, reason: str, clean: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._send.fail_all(reason)
        self._recv.drop()
        self._out.events.append(SessionEnded(reason, clean))

    def _send_ctl(self, msg: bytes) -> None:
        self._out.ctl.append(msg)

    def _fail(self, reason: str, detail: str, term: TermReason | None) -> None:
        """A fatal protocol error: count it, say SESS_TERM where allowed, end."""
        self._out.violation(reason, detail)
        if term is not None and self._sent_ch and not self._sent_term:
            self._send_ctl(encode_sess_term(term))
            self._sent_term = True
        self._end(f"protocol violation: {reason}", clean=False)

    def _on_wire_error(self, exc: WireError) -> None:
        if exc.reason == "bad_magic":
            # RFC 9174 6.1: a failed Contact Header closes TCP without SESS_TERM
            self._out.violation(exc.reason, str(exc))
            self._end("peer is not a TCPCL entity", clean=False)
        elif exc.reason == "unknown_message_type":
            # RFC 9174 5.1.2 / 8.5: MSG_REJECT and close; the stream cannot be resynchronised
            self._send_ctl(encode_msg_reject(RejectReason.MESSAGE_TYPE_UNKNOWN, exc.header or 0))
            self._out.violation(exc.reason, str(exc))
            self._end("protocol violation: unknown_message_type", clean=False)
        elif exc.reason.endswith("_too_long"):
            self._fail(exc.reason, str(exc), TermReason.RESOURCE_EXHAUSTION)
        elif exc.reason.startswith("transfer_"):
            self._fail(exc.reason, str(exc), TermReason.UNKNOWN)
        else:
            self._fail(exc.reason, str(exc), TermReason.CONTACT_FAILURE)
