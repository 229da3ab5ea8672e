"""One TCPCLv3 session (RFC 7242) as a sans-I/O state machine.

The driver feeds it what TCP delivered (:meth:`TcpclV3Session.receive_data`,
:meth:`~TcpclV3Session.receive_eof`), the passing of time
(:meth:`~TcpclV3Session.handle_timer` at :meth:`~TcpclV3Session.next_deadline_ns`)
and the agent's decisions (:meth:`~TcpclV3Session.start_transfer`,
:meth:`~TcpclV3Session.accept_transfer`, :meth:`~TcpclV3Session.refuse_transfer`,
:meth:`~TcpclV3Session.terminate`). Each call returns the events it caused;
octets to write are pulled with :meth:`~TcpclV3Session.data_to_send`, control
messages first, then at most one segment. Times are int ns of the driver's clock.

Choices RFC 7242 leaves to us, in one place:

- Both sides send their contact header at once. We ask for segment acks,
  offer refusal and ask for LENGTH messages; each holds only if the peer
  sets it too. A peer that will not acknowledge segments gets SHUTDOWN: without
  acks nothing tells us it stored a bundle, and we never drop a copy on hope.
- The keepalive interval is the smaller offer (0 if either is 0). KEEPALIVE
  goes out after that long without sending; nothing received for twice that
  long ends the session with SHUTDOWN "idle timeout". The agent's partial and
  transfer timeouts (:mod:`~hilnet.agent.cla.limits`) hold as in TCPCLv4:
  both versions keep time with :mod:`~hilnet.agent.cla.tcpcl_liveness`.
- A peer speaking another version gets SHUTDOWN "version mismatch"; any other
  broken input gets a SHUTDOWN without reason. Every one is a counted violation.
- Sending (:mod:`~hilnet.agent.cla.tcpclv3_send`) and receiving
  (:mod:`~hilnet.agent.cla.tcpclv3_recv`) apply acks and refusals first in,
  first out; the final ack of a bundle waits for the agent's commit.
- A SHUTDOWN, sent or received, ends the session at once; what is in flight
  fails and the sender keeps it. A reconnection delay the peer asks for is
  reported (:class:`~hilnet.agent.cla.tcpclv3_events.PeerShutdown`) for the
  driver's connector to honour.
"""

from __future__ import annotations

from enum import Enum

from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.tcpcl_liveness import STALLED, Due, Liveness, stalled_events
from hilnet.agent.cla.tcpcl_messages import reason_name, valid_node_id
from hilnet.agent.cla.tcpclv3_events import (
    Outbox,
    PeerShutdown,
    SessionConfig,
    SessionEnded,
    SessionParams,
    SessionUp,
)
from hilnet.agent.cla.tcpclv3_messages import (
    AckSegment,
    ContactFlag,
    ContactHeader,
    DataSegment,
    Length,
    Message,
    RefuseBundle,
    RefuseReason,
    Shutdown,
    ShutdownReason,
)
from hilnet.agent.cla.tcpclv3_recv import TransferReceiver
from hilnet.agent.cla.tcpclv3_send import TransferSender
from hilnet.agent.cla.tcpclv3_wire import (
    KEEPALIVE_BYTES,
    encode_contact_header,
    encode_shutdown,
    parse_contact_header,
    parse_message,
)
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.errors import ClaError, TooBigForPeerError, WireError


class State(Enum):
    CONTACT = "contact"  # waiting for the peer's contact header
    ESTABLISHED = "established"
    CLOSED = "closed"


class TcpclV3Session:
    """Both directions of one TCPCLv3 session, without I/O."""

    def __init__(
        self,
        config: SessionConfig,
        active: bool,
        now_ns: int,
        expected_peer: str | None = None,
        hold: Holding | None = None,
    ):
        self.config = config
        self.active = active
        self.expected_peer = expected_peer  # the EID an active side meant to reach
        self.state = State.CONTACT
        self.params: SessionParams | None = None
        self._out = Outbox()
        self._buf = bytearray()  # an incomplete message carried between reads
        self._send = TransferSender(config, self._out)
        self._recv = TransferReceiver(config, self._out, hold)
        self._timers = Liveness(config, now_ns, self._send, self._recv)  # type: ignore[arg-type]  # same fields
        flags = ContactFlag.SEGMENT_ACKS
        flags |= ContactFlag.REFUSALS if config.refusals else 0
        flags |= ContactFlag.LENGTHS if config.lengths else 0
        self._out.ctl.append(encode_contact_header(flags, config.keepalive_s, config.node_id))

    # --- public API ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    def receive_data(self, data: bytes | bytearray | memoryview, now_ns: int) -> list:
        """Octets from TCP, in order. Never raises for bad input: see Violation events."""
        if self.closed or not data:
            return self._out.take_events()
        self._timers.received(now_ns)
        src: bytes | bytearray | memoryview = data
        if self._buf:
            src = bytes(self._buf + data)
            self._buf = bytearray()
        mv = memoryview(src)
        pos, n = 0, len(mv)
        recv = self._recv
        while pos < n and not self.closed:
            if recv.seg_left:
                pos += recv.segment_data(mv[pos:])
                continue
            try:
                if self.state is State.CONTACT:
                    parsed_ch = parse_contact_header(mv[pos:], self.config.max_eid_len)
                    if parsed_ch is None:
                        break
                    pos += parsed_ch[1]
                    self._on_contact_header(parsed_ch[0], now_ns)
                    continue
                parsed = parse_message(mv[pos:])
            except WireError as exc:
                self._on_wire_error(exc)
                break
            if parsed is None:
                break
            pos += parsed[1]
            self._on_message(parsed[0])
        if pos < n and not self.closed:
            self._buf = bytearray(mv[pos:])
        self._flush_answers()
        self._timers.observe(now_ns)
        return self._out.take_events()

    def receive_eof(self, now_ns: int) -> list:
        """The peer closed TCP (or the connection broke)."""
        self._end("connection closed by peer", clean=False)
        return self._out.take_events()

    def start_transfer(self, data: bytes | bytearray | memoryview, now_ns: int, rank: int = DEFAULT_RANK) -> int:
        """Queue one bundle (not copied, so it must not change); returns its ticket. Raises ClaError if it cannot go.

        ``rank`` (class of service) lets it overtake queued bundles not yet begun.
        """
        if not self.established:
            raise ClaError(f"TCPCLv3 session is {self.state.value}, not established")
        if not len(data):
            raise ClaError("an empty bundle")
        if len(data) > self.config.transfer_mru:
            raise TooBigForPeerError(
                f"bundle of {len(data)} bytes is above this CLA's limit of {self.config.transfer_mru}"
            )
        return self._send.queue(data, rank)

    def accept_transfer(self, ticket: int, now_ns: int) -> list:
        """The agent committed a received bundle: its final ACK_SEGMENT may go."""
        if self._recv.accept(ticket):
            self._timers.resumed(now_ns)
            self._flush_answers()
        return self._out.take_events()

    def refuse_transfer(self, ticket: int, reason: RefuseReason, now_ns: int) -> list:
        """The agent did not take a received bundle: REFUSE_BUNDLE, or SHUTDOWN "busy" without refusal."""
        if self._recv.refuse(ticket, reason):
            self._timers.resumed(now_ns)
            self._flush_answers()
        return self._out.take_events()

    def terminate(self, now_ns: int = 0) -> list:
        """End the session: SHUTDOWN, then SessionEnded. What is in flight fails; its sender keeps it."""
        if not self.closed:
            busy = self._send.busy or self._recv.busy
            self._out.ctl.append(encode_shutdown())
            self._end("local: shutdown", clean=not busy)
        return self._out.take_events()

    def data_to_send(self, now_ns: int) -> list[bytes | memoryview]:
        """Next octets to write: all queued control messages, then at most one segment."""
        ctl = self._out.ctl
        out: list[bytes | memoryview] = list(ctl)
        ctl.clear()
        if self.established and self.params is not None:
            seg = self._send.next_segment(self.params.lengths)
            if seg:
                out.extend(seg)
        if out:
            self._timers.sent(now_ns)
        return out

    def next_deadline_ns(self) -> int | None:
        """When handle_timer() must next run (ns), or None."""
        if self.closed:
            return None
        return self._timers.next_deadline_ns(self._recv.awaiting_commit)

    def handle_timer(self, now_ns: int) -> list:
        """Act on whatever deadline has passed at ``now_ns`` (early calls do nothing)."""
        if self.closed:
            return self._out.take_events()
        due = self._timers.due(now_ns, self._recv.awaiting_commit)
        if due is Due.HANDSHAKE:
            self._end("no contact header in time", clean=False)
        elif due is Due.IDLE:
            self._out.ctl.append(encode_shutdown(ShutdownReason.IDLE_TIMEOUT))
            self._end(STALLED[due], clean=False)
        elif due in STALLED:
            self._out.ctl.append(encode_shutdown())
            self._out.events += stalled_events(due)
            self._end(STALLED[due], clean=False)
        elif due is Due.KEEPALIVE:
            self._out.ctl.append(KEEPALIVE_BYTES)
            self._timers.sent(now_ns)  # due again one interval later even if the write stalls
        return self._out.take_events()

    # --- the peer -------------------------------------------------------------

    def _on_contact_header(self, ch: ContactHeader, now_ns: int) -> None:
        cfg = self.config
        if not ch.flags & ContactFlag.SEGMENT_ACKS:
            self._fail("peer_without_acks", f"{ch.eid or 'the peer'} does not acknowledge segments")
            return
        if ch.eid and not valid_node_id(ch.eid):
            self._fail("bad_eid", f"contact header EID {ch.eid!r}")
            return
        keepalive = min(cfg.keepalive_s, ch.keepalive_s)
        refusals = cfg.refusals and bool(ch.flags & ContactFlag.REFUSALS)
        lengths = cfg.lengths and bool(ch.flags & ContactFlag.LENGTHS)
        self.params = SessionParams(ch.eid, keepalive, refusals, lengths, ch.flags)
        self._recv.refusals = refusals
        self._timers.established(keepalive, now_ns)
        self.state = State.ESTABLISHED
        self._out.events.append(SessionUp(ch.eid, self.params))

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, DataSegment):
            self._on_segment(msg)
        elif isinstance(msg, AckSegment):
            self._send.on_ack(msg.length)
        elif isinstance(msg, RefuseBundle):
            if self.params is not None and not self.params.refusals:
                self._out.violation("refusal_not_negotiated", f"REFUSE_BUNDLE reason {msg.reason}")
            self._send.on_refuse(msg.reason)
        elif isinstance(msg, Shutdown):
            self._out.events.append(PeerShutdown(msg.reason, msg.delay_s))
            why = "" if msg.reason is None else f" ({reason_name(ShutdownReason, msg.reason)})"
            self._end(f"peer: shutdown{why}", clean=not (self._send.busy or self._recv.busy))
        elif isinstance(msg, Length):
            self._recv.on_length(msg.length)
        # KEEPALIVE: receiving it already refreshed the idle timer

    def _on_segment(self, seg: DataSegment) -> None:
        recv = self._recv
        # Acks carry no bundle id: a segment out of place would make every later ack lie.
        if not seg.start and not recv.receiving:
            self._fail("segment_without_start", f"a segment of {seg.length} octets outside any bundle")
        elif seg.start and recv.partial:
            self._fail("bundle_not_ended", "a new bundle began before the last one's END")
        else:
            recv.on_segment(seg)

    def _flush_answers(self) -> None:
        ready, busy = self._recv.take_ready()
        self._out.ctl.extend(ready)
        if busy and not self.closed:
            self._out.ctl.append(encode_shutdown(ShutdownReason.BUSY, self.config.busy_delay_s))
            self._end("local: busy (a bundle refused without REFUSE_BUNDLE)", clean=False)

    # --- endings and errors ---------------------------------------------------

    def _end(self, reason: str, clean: bool) -> None:
        if self.closed:
            return
        self.state = State.CLOSED
        self._send.fail_all(reason)
        self._recv.drop()
        self._out.events.append(SessionEnded(reason, clean))

    def _fail(self, reason: str, detail: str) -> None:
        """A fatal protocol error: count it, say SHUTDOWN, end."""
        self._out.violation(reason, detail)
        self._out.ctl.append(encode_shutdown())
        self._end(f"protocol violation: {reason}", clean=False)

    def _on_wire_error(self, exc: WireError) -> None:
        if exc.reason == "bad_magic":  # not a TCPCL entity: nothing it would understand
            self._out.violation(exc.reason, str(exc))
            self._end("peer is not a TCPCL entity", clean=False)
        elif exc.reason == "version_mismatch":
            self._out.violation(exc.reason, str(exc))
            self._out.ctl.append(encode_shutdown(ShutdownReason.VERSION_MISMATCH))
            self._end(str(exc), clean=False)
        else:
            self._fail(exc.reason, str(exc))
