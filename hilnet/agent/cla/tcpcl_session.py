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

- No TLS: the Contact Header says CAN_TLS=0, so the negotiated Enable TLS is
  false. A peer whose policy requires TLS ends the session with SESS_TERM
  "Contact Failure"; that arrives here as :class:`SessionEnded`.
- Liveness: any octet received counts (a 1 MiB segment on a slow link is not
  idleness). With a negotiated keepalive K > 0, KEEPALIVE goes out after K s
  without sending, and the session ends with "Idle timeout" after 2K s without
  receiving: this is how a link stalled by an outage is noticed. While a
  received bundle waits for the agent's commit the receive timer is paused,
  since the driver stops reading meanwhile.
- Outgoing transfers are pipelined (the next one starts while the previous
  waits for its final ack) and never interleaved. A transfer is finished only
  by an XFER_ACK whose length covers the whole bundle.
- Incoming data is acknowledged per segment once buffered; the final XFER_ACK
  waits for :meth:`accept_transfer`, i.e. for the agent's commit. A transfer
  cut short by the end of the session is dropped, never delivered.
- Transfer ids seen in this session are remembered (the last
  ``SessionConfig.remembered_ids`` of them) so a reused id is refused
  ("Completed"), not delivered twice.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from enum import Enum

from hilnet.errors import ClaError, WireError
from hilnet.agent.cla.tcpcl_events import (  # re-exported: the session's public vocabulary
    NS_PER_S,
    Event,
    SessionConfig,
    SessionEnded,
    SessionParams,
    SessionUp,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)
from hilnet.agent.cla.tcpcl_wire import (
    KEEPALIVE_BYTES,
    U64_MAX,
    VERSION,
    ContactFlag,
    ContactHeader,
    Keepalive,
    MsgReject,
    MsgType,
    RefuseReason,
    RejectReason,
    SegmentFlag,
    SegmentHeader,
    SessInit,
    SessTerm,
    TermReason,
    TransferExtType,
    XferAck,
    XferRefuse,
    encode_contact_header,
    encode_msg_reject,
    encode_segment_header,
    encode_sess_init,
    encode_sess_term,
    encode_transfer_length,
    encode_xfer_ack,
    encode_xfer_refuse,
    parse_contact_header,
    parse_message,
    reason_name,
    valid_node_id,
)

class State(Enum):
    CONTACT = "contact"  # waiting for the peer's Contact Header
    SESS_INIT = "sess_init"  # waiting for the peer's SESS_INIT
    ESTABLISHED = "established"
    ENDING = "ending"  # a SESS_TERM went out: no new transfers
    CLOSED = "closed"


class _Outgoing:
    __slots__ = ("tid", "data", "offset", "acked", "total")

    def __init__(self, tid: int, data: memoryview):
        self.tid = tid
        self.data = data
        self.offset = 0  # octets already put into segments
        self.acked = 0
        self.total = len(data)


class _Incoming:
    __slots__ = ("tid", "buf", "total", "refused")

    def __init__(self, tid: int, total: int | None):
        self.tid = tid
        self.buf = bytearray()
        self.total = total  # from the Transfer Length extension, if sent
        self.refused: int | None = None  # refusal reason once refused


class TcpclSession:
    """Both directions of one TCPCLv4 session, without I/O."""

    def __init__(self, config: SessionConfig, active: bool, now_ns: int, expected_peer: str | None = None):
        self.config = config
        self.active = active
        self.expected_peer = expected_peer  # the node id an active side meant to reach
        self.state = State.CONTACT
        self.params: SessionParams | None = None
        self._ctl: deque[bytes] = deque()  # whole messages to send before any more segment
        self._events: list[Event] = []
        self._buf = bytearray()  # an incomplete message header carried between reads
        self._sent_ch = False
        self._sent_init = False
        self._sent_term = False
        self._peer_term = False
        self._term_reason = ""
        self._started_ns = now_ns
        self._last_rx_ns = now_ns
        self._last_tx_ns = now_ns
        self._ending_ns = 0
        # sender side
        self._next_tid = 0
        self._tx_queue: deque[_Outgoing] = deque()  # head is being segmented
        self._tx_live: dict[int, _Outgoing] = {}  # started, awaiting the final ack
        # receiver side
        self._rx: _Incoming | None = None
        self._seg: SegmentHeader | None = None
        self._seg_left = 0  # data octets of the current segment still to come
        self._commit: dict[int, tuple[int, int]] = {}  # tid -> (flags, length) of the final ack
        self._seen: OrderedDict[int, bool] = OrderedDict()  # tid -> delivered?
        if active:
            self._send_ctl(encode_contact_header(ContactFlag.NONE))
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
            return self._take_events()
        self._last_rx_ns = now_ns
        if self._buf:
            self._buf += data
            src = bytes(self._buf)
            self._buf = bytearray()
        else:
            src = data
        mv = memoryview(src)
        pos, n = 0, len(mv)
        while pos < n and self.state is not State.CLOSED:
            if self._seg_left:
                take = min(self._seg_left, n - pos)
                self._segment_data(mv[pos : pos + take])
                pos += take
                self._seg_left -= take
                if not self._seg_left:
                    self._segment_done()
                continue
            try:
                if self.state is State.CONTACT:
                    ch = parse_contact_header(mv[pos:])
                    if ch is None:
                        break
                    pos += 6
                    self._on_contact_header(ch)
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
        if pos < n and self.state is not State.CLOSED:
            self._buf = bytearray(mv[pos:])
        return self._take_events()

    def receive_eof(self, now_ns: int) -> list[Event]:
        """The peer closed TCP (or the connection broke)."""
        if self.state is not State.CLOSED:
            clean = self._sent_term and self._peer_term and not self._busy()
            self._end(self._term_reason if clean else "connection closed by peer", clean)
        return self._take_events()

    def start_transfer(self, data: bytes | bytearray | memoryview, now_ns: int) -> int:
        """Queue one bundle; returns its transfer id. Raises ClaError if it cannot go now.

        ``data`` is not copied: it must not change until the transfer ends.
        """
        if self.state is not State.ESTABLISHED or self.params is None:
            raise ClaError(f"TCPCL session is {self.state.value}, not established")
        if len(data) > self.params.peer_transfer_mru:
            raise ClaError(f"bundle of {len(data)} bytes is above the peer's transfer MRU of {self.params.peer_transfer_mru}")
        if self.params.peer_segment_mru == 0 and len(data):
            raise ClaError("the peer's segment MRU is 0: it takes no data")
        if self._next_tid > U64_MAX:
            self.terminate(TermReason.RESOURCE_EXHAUSTION, now_ns)
            raise ClaError("transfer ids of this session are exhausted")
        tid = self._next_tid
        self._next_tid += 1
        self._tx_queue.append(_Outgoing(tid, memoryview(data).cast("B")))
        return tid

    def accept_transfer(self, transfer_id: int, now_ns: int) -> list[Event]:
        """The agent committed a received bundle: send its final XFER_ACK."""
        final = self._commit.pop(transfer_id, None)
        if final is not None and self.state is not State.CLOSED:
            self._send_ctl(encode_xfer_ack(final[0], transfer_id, final[1]))
            self._remember(transfer_id, True)
            self._last_rx_ns = max(self._last_rx_ns, now_ns)  # the pause ends now
            self._maybe_finish()
        return self._take_events()

    def refuse_transfer(self, transfer_id: int, reason: RefuseReason, now_ns: int) -> list[Event]:
        """The agent did not take a received bundle (store full: NO_RESOURCES)."""
        if self._commit.pop(transfer_id, None) is not None and self.state is not State.CLOSED:
            self._send_ctl(encode_xfer_refuse(reason, transfer_id))
            self._last_rx_ns = max(self._last_rx_ns, now_ns)
            self._maybe_finish()
        return self._take_events()

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
        return self._take_events()

    def data_to_send(self, now_ns: int) -> list[bytes | memoryview]:
        """Next octets to write: all queued control messages, then at most one segment."""
        out: list[bytes | memoryview] = list(self._ctl)
        self._ctl.clear()
        if self.state in (State.ESTABLISHED, State.ENDING):
            seg = self._next_segment()
            if seg:
                out.extend(seg)
        if out:
            self._last_tx_ns = now_ns
        return out

    def next_deadline_ns(self) -> int | None:
        """When handle_timer() must next run (ns), or None."""
        if self.state is State.CLOSED:
            return None
        if self.state in (State.CONTACT, State.SESS_INIT):
            return self._started_ns + self.config.handshake_timeout_ns
        times = []
        ka = self.params.keepalive_s * NS_PER_S if self.params else 0
        if ka:
            times.append(self._last_tx_ns + ka)
            if not self._commit:
                times.append(self._last_rx_ns + 2 * ka)
        if self.state is State.ENDING and not self._peer_term:
            times.append(self._ending_ns + self.config.term_timeout_ns)
        return min(times) if times else None

    def handle_timer(self, now_ns: int) -> list[Event]:
        """Act on whatever deadline has passed at ``now_ns`` (early calls do nothing)."""
        if self.state in (State.CONTACT, State.SESS_INIT):
            if now_ns >= self._started_ns + self.config.handshake_timeout_ns:
                if self.state is State.SESS_INIT:
                    self._send_ctl(encode_sess_term(TermReason.CONTACT_FAILURE))
                self._end(f"no {'contact header' if self.state is State.CONTACT else 'SESS_INIT'} in time", False)
            return self._take_events()
        if self.state is State.CLOSED or self.params is None:
            return self._take_events()
        ka = self.params.keepalive_s * NS_PER_S
        if ka and not self._commit and now_ns >= self._last_rx_ns + 2 * ka:
            if not self._sent_term:
                self._send_ctl(encode_sess_term(TermReason.IDLE_TIMEOUT))
                self._sent_term = True
            self._end("idle timeout: nothing received for twice the keepalive interval", clean=False)
            return self._take_events()
        if self.state is State.ENDING and not self._peer_term and now_ns >= self._ending_ns + self.config.term_timeout_ns:
            self._end(f"{self._term_reason}; no SESS_TERM reply in time", clean=False)
            return self._take_events()
        if ka and now_ns >= self._last_tx_ns + ka:
            self._send_ctl(KEEPALIVE_BYTES)
            self._last_tx_ns = now_ns  # due again one interval later even if the write stalls
        return self._take_events()

    # --- handshake ----------------------------------------------------------

    def _on_contact_header(self, ch: ContactHeader) -> None:
        if not self.active:
            self._send_ctl(encode_contact_header(ContactFlag.NONE))
            self._sent_ch = True
        if ch.version != VERSION:
            self._violation("version_mismatch", f"peer speaks TCPCL version {ch.version}")
            if not self.active:
                self._send_ctl(encode_sess_term(TermReason.VERSION_MISMATCH))
            self._end(f"peer speaks TCPCL version {ch.version}", clean=False)
            return
        # CAN_TLS is 0 here, so Enable TLS is false whatever the peer offers;
        # a peer that insists on TLS sends SESS_TERM (Contact Failure) itself.
        self.state = State.SESS_INIT
        if self.active:
            self._send_init()

    def _send_init(self) -> None:
        c = self.config
        self._send_ctl(encode_sess_init(SessInit(c.keepalive_s, c.segment_mru, c.transfer_mru, c.node_id)))
        self._sent_init = True

    def _on_sess_init(self, msg: SessInit, now_ns: int) -> None:
        for item in msg.extensions:
            if item.critical:  # no session extension is known to us
                self._fail("session_ext_critical", f"critical session extension type {item.type}", TermReason.CONTACT_FAILURE)
                return
        if msg.node_id and not valid_node_id(msg.node_id):
            self._fail("node_id_invalid", f"node id {msg.node_id!r} is not a URI", TermReason.CONTACT_FAILURE)
            return
        if not self.active:
            self._send_init()
        if self.expected_peer and msg.node_id and msg.node_id != self.expected_peer:
            # RFC 9174 4.6: allowed, and the session belongs to the id the peer gave.
            self._violation("node_id_unexpected", f"expected {self.expected_peer}, peer says {msg.node_id}")
        self.params = SessionParams(
            peer_node_id=msg.node_id,
            keepalive_s=min(self.config.keepalive_s, msg.keepalive_s),
            peer_segment_mru=msg.segment_mru,
            peer_transfer_mru=msg.transfer_mru,
        )
        self.state = State.ESTABLISHED
        self._last_rx_ns = self._last_tx_ns = now_ns
        self._events.append(SessionUp(msg.node_id, self.params))

    # --- messages -----------------------------------------------------------

    def _on_message(self, msg, now_ns: int) -> None:
        if isinstance(msg, SessTerm):
            self._on_sess_term(msg, now_ns)
        elif isinstance(msg, MsgReject):
            self._violation(f"peer_rejected_{reason_name(RejectReason, msg.reason)}", f"our message type 0x{msg.rejected_header:02x}")
        elif self.state is State.SESS_INIT:
            if isinstance(msg, SessInit):
                self._on_sess_init(msg, now_ns)
            else:
                self._reject(RejectReason.MESSAGE_UNEXPECTED, _type_of(msg), "message_before_sess_init")
                self._fail("message_before_sess_init", type(msg).__name__, TermReason.CONTACT_FAILURE)
        elif isinstance(msg, SegmentHeader):
            self._on_segment(msg)
            if self._seg is not None and not self._seg_left and self.state is not State.CLOSED:
                self._segment_done()  # a zero-length segment has no data to wait for
        elif isinstance(msg, XferAck):
            self._on_ack(msg)
        elif isinstance(msg, XferRefuse):
            self._on_refuse(msg)
        elif isinstance(msg, Keepalive):
            pass  # receiving it already refreshed the idle timer
        elif isinstance(msg, SessInit):
            self._reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.SESS_INIT, "sess_init_again")

    def _on_sess_term(self, msg: SessTerm, now_ns: int) -> None:
        if self.state is State.SESS_INIT:
            # e.g. the peer requires TLS, or refuses our parameters
            self._end(f"peer: {reason_name(TermReason, msg.reason)} (before session up)", clean=False)
            return
        self._peer_term = True
        if not self._sent_term:
            self._term_reason = f"peer: {reason_name(TermReason, msg.reason)}"
            self._send_term(msg.reason, now_ns, reply=True)  # identical content, REPLY set
        self._maybe_finish()

    def _on_ack(self, msg: XferAck) -> None:
        out = self._tx_live.get(msg.transfer_id)
        if out is None:
            self._reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_ACK, "ack_unknown_transfer")
            return
        if msg.length < out.acked or msg.length > out.offset:
            self._violation("ack_bad_length", f"transfer {msg.transfer_id}: ack {msg.length}, sent {out.offset}, acked {out.acked}")
            return
        out.acked = msg.length
        final = out.acked == out.total and out.offset == out.total
        if final:
            del self._tx_live[msg.transfer_id]
        self._events.append(TransferAcked(msg.transfer_id, msg.length, final))
        if final:
            self._maybe_finish()

    def _on_refuse(self, msg: XferRefuse) -> None:
        out = self._tx_live.pop(msg.transfer_id, None)
        if out is None:
            self._reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_REFUSE, "refuse_unknown_transfer")
            return
        if self._tx_queue and self._tx_queue[0] is out:
            self._tx_queue.popleft()  # MUST NOT send further segments of it
        self._events.append(TransferRefused(msg.transfer_id, msg.reason))
        self._maybe_finish()

    # --- receiving a transfer ----------------------------------------------

    def _on_segment(self, seg: SegmentHeader) -> None:
        if seg.length > self.config.segment_mru:
            self._fail("segment_mru_exceeded", f"segment of {seg.length} bytes, our MRU is {self.config.segment_mru}",
                       TermReason.RESOURCE_EXHAUSTION)
            return
        self._seg = seg
        self._seg_left = seg.length
        rx = self._rx
        if seg.start:
            if rx is not None and rx.refused is None:
                self._violation("transfer_not_ended", f"transfer {rx.tid} restarted by {seg.transfer_id} before its END")
            self._rx = rx = _Incoming(seg.transfer_id, None)
            refusal = self._check_start(seg, rx)
            if refusal is not None:
                self._refuse(rx, refusal)
        elif rx is None or rx.tid != seg.transfer_id:
            if seg.transfer_id in self._seen and not self._seen[seg.transfer_id]:
                self._send_ctl(encode_xfer_refuse(RefuseReason.UNKNOWN, seg.transfer_id))  # still refused
            else:
                self._reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_SEGMENT, "segment_without_start")
            self._rx = _Incoming(seg.transfer_id, None)
            self._rx.refused = RefuseReason.UNKNOWN  # swallow its data
            return
        if rx.refused is not None:
            if not seg.start:
                self._send_ctl(encode_xfer_refuse(rx.refused, rx.tid))  # RFC 9174 5.2.4: refuse again
            return
        size = len(rx.buf) + seg.length
        if rx.total is not None and size > rx.total:
            self._violation("transfer_longer_than_announced", f"transfer {rx.tid}: {size} > {rx.total}")
            self._refuse(rx, RefuseReason.NOT_ACCEPTABLE)
        elif size > self.config.transfer_mru:
            self._violation("transfer_mru_exceeded", f"transfer {rx.tid} passes {self.config.transfer_mru} bytes")
            self._refuse(rx, RefuseReason.NO_RESOURCES)

    def _check_start(self, seg: SegmentHeader, rx: _Incoming) -> RefuseReason | None:
        if self.state is State.ENDING:
            return RefuseReason.SESSION_TERMINATING
        if seg.transfer_id in self._seen or seg.transfer_id in self._commit:
            self._violation("transfer_id_reused", f"transfer id {seg.transfer_id}")
            return RefuseReason.COMPLETED if self._seen.get(seg.transfer_id) else RefuseReason.NOT_ACCEPTABLE
        for item in seg.extensions:
            if item.type == TransferExtType.TRANSFER_LENGTH:
                if rx.total is not None or len(item.value) != 8:
                    self._violation("transfer_length_ext_invalid", f"transfer {seg.transfer_id}")
                    return RefuseReason.NOT_ACCEPTABLE
                (rx.total,) = struct.unpack("!Q", item.value)
                if rx.total > self.config.transfer_mru:
                    return RefuseReason.NO_RESOURCES
            elif item.critical:
                self._violation("transfer_ext_critical", f"critical transfer extension type {item.type}")
                return RefuseReason.EXTENSION_FAILURE
        return None

    def _segment_data(self, chunk: memoryview) -> None:
        rx = self._rx
        if rx is not None and rx.refused is None:
            rx.buf += chunk

    def _segment_done(self) -> None:
        seg, rx = self._seg, self._rx
        self._seg = None
        if seg is None or rx is None:
            return
        if rx.refused is not None:
            if seg.end:
                self._rx = None
            return
        if not seg.end:
            self._send_ctl(encode_xfer_ack(seg.flags, rx.tid, len(rx.buf)))
            return
        self._rx = None
        if rx.total is not None and len(rx.buf) != rx.total:
            self._violation("transfer_shorter_than_announced", f"transfer {rx.tid}: {len(rx.buf)} < {rx.total}")
            self._refuse(rx, RefuseReason.NOT_ACCEPTABLE)
            return
        self._commit[rx.tid] = (seg.flags, len(rx.buf))
        self._events.append(TransferReceived(rx.tid, bytes(rx.buf)))

    def _refuse(self, rx: _Incoming, reason: RefuseReason) -> None:
        rx.refused = reason
        rx.buf = bytearray()
        if rx.tid not in self._seen:
            self._remember(rx.tid, False)
        self._send_ctl(encode_xfer_refuse(reason, rx.tid))

    def _remember(self, tid: int, delivered: bool) -> None:
        self._seen[tid] = delivered
        while len(self._seen) > self.config.remembered_ids:
            self._seen.popitem(last=False)

    # --- sending a transfer ---------------------------------------------------

    def _next_segment(self) -> list[bytes | memoryview] | None:
        while self._tx_queue:
            out = self._tx_queue[0]
            if out.tid not in self._tx_live:
                if self.state is not State.ESTABLISHED:
                    self._drop_unstarted()
                    continue
                self._tx_live[out.tid] = out
            assert self.params is not None  # established before any transfer starts
            size = min(out.total - out.offset, self.config.max_segment, self.params.peer_segment_mru)
            flags = SegmentFlag.NONE
            ext = b""
            if out.offset == 0:
                flags |= SegmentFlag.START
                if size < out.total:
                    ext = encode_transfer_length(out.total)
            if out.offset + size == out.total:
                flags |= SegmentFlag.END
                self._tx_queue.popleft()
            header = encode_segment_header(flags, out.tid, size, ext)
            chunk = out.data[out.offset : out.offset + size]
            out.offset += size
            return [header, chunk] if size else [header]
        return None

    # --- endings and errors ---------------------------------------------------

    def _busy(self) -> bool:
        return bool(self._tx_live or self._tx_queue or self._commit or self._rx is not None)

    def _send_term(self, reason: int, now_ns: int, reply: bool) -> None:
        self._send_ctl(encode_sess_term(reason, reply=reply))
        self._sent_term = True
        self.state = State.ENDING
        self._ending_ns = now_ns
        self._drop_unstarted()

    def _drop_unstarted(self) -> None:
        # Ending: a transfer not yet begun must not begin (RFC 9174 6.1)
        keep: deque[_Outgoing] = deque()
        for out in self._tx_queue:
            if out.tid in self._tx_live:
                keep.append(out)
            else:
                self._events.append(TransferFailed(out.tid, "session terminating"))
        self._tx_queue = keep

    def _maybe_finish(self) -> None:
        if self.state is State.ENDING:
            if self._sent_term and self._peer_term and not self._busy():
                self._end(self._term_reason, clean=True)

    def _end(self, reason: str, clean: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        for tid in list(self._tx_live) + [o.tid for o in self._tx_queue if o.tid not in self._tx_live]:
            self._events.append(TransferFailed(tid, reason))
        self._tx_live.clear()
        self._tx_queue.clear()
        self._rx = None  # a partial transfer is dropped, never delivered
        self._events.append(SessionEnded(reason, clean))

    def _send_ctl(self, msg: bytes) -> None:
        self._ctl.append(msg)

    def _violation(self, reason: str, detail: str = "") -> None:
        self._events.append(Violation(reason, detail))

    def _reject(self, reason: RejectReason, header: int, counter: str) -> None:
        self._violation(counter)
        self._send_ctl(encode_msg_reject(reason, header))

    def _fail(self, reason: str, detail: str, term: TermReason | None) -> None:
        """A fatal protocol error: count it, say SESS_TERM where allowed, end."""
        self._violation(reason, detail)
        if term is not None and self._sent_ch and not self._sent_term:
            self._send_ctl(encode_sess_term(term))
            self._sent_term = True
        self._end(f"protocol violation: {reason}", clean=False)

    def _on_wire_error(self, exc: WireError) -> None:
        if exc.reason == "bad_magic":
            # RFC 9174 6.1: a failed Contact Header closes TCP without SESS_TERM
            self._violation(exc.reason, str(exc))
            self._end("peer is not a TCPCL entity", clean=False)
        elif exc.reason == "unknown_message_type":
            # RFC 9174 5.1.2 / 8.5: MSG_REJECT and close; the stream cannot be resynchronised
            self._send_ctl(encode_msg_reject(RejectReason.MESSAGE_TYPE_UNKNOWN, exc.header or 0))
            self._violation(exc.reason, str(exc))
            self._end("protocol violation: unknown_message_type", clean=False)
        elif exc.reason.endswith("_too_long"):
            self._fail(exc.reason, str(exc), TermReason.RESOURCE_EXHAUSTION)
        elif exc.reason.startswith("transfer_"):
            self._fail(exc.reason, str(exc), TermReason.UNKNOWN)
        else:
            self._fail(exc.reason, str(exc), TermReason.CONTACT_FAILURE)

    def _take_events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev


def _type_of(msg) -> int:
    return {
        SessInit: MsgType.SESS_INIT, SessTerm: MsgType.SESS_TERM, SegmentHeader: MsgType.XFER_SEGMENT,
        XferAck: MsgType.XFER_ACK, XferRefuse: MsgType.XFER_REFUSE, Keepalive: MsgType.KEEPALIVE,
        MsgReject: MsgType.MSG_REJECT,
    }[type(msg)]
