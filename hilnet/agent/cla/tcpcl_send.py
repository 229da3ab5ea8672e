"""The sending half of a TCPCLv4 session: transfer ids, segmentation, acks and refusals.

Sans-I/O, driven by :class:`~hilnet.agent.cla.tcpcl_session.TcpclSession`,
which decides when a transfer may start and when the session ends. Outgoing
transfers are pipelined (the next one starts while the previous waits for its
final ack) and never interleaved. A transfer is finished only by an XFER_ACK
whose length covers the whole bundle. Sizes are in bytes.

Classes of service: transfers not yet begun wait by rank (higher first, then
in order of queueing), so an expedited bundle starts right after the transfer
being segmented. Transfer ids are given when a transfer begins, so they still
go up by one on the wire (RFC 9174 5.2.1); the driver knows a transfer by the
*ticket* :meth:`TransferSender.queue` returned, and every event names that
ticket. Tickets equal transfer ids as long as nothing overtakes.
"""

from __future__ import annotations

from collections import deque

from hilnet.agent.cla.tcpcl_events import Outbox, SessionConfig, TransferAcked, TransferFailed, TransferRefused
from hilnet.agent.cla.tcpcl_messages import U64_MAX, MsgType, RejectReason, SegmentFlag, XferAck, XferRefuse
from hilnet.agent.cla.tcpcl_wire import encode_segment_header, encode_transfer_length
from hilnet.bundle.cos import DEFAULT_RANK


class _Outgoing:
    __slots__ = ("ticket", "rank", "tid", "data", "offset", "acked", "total")

    def __init__(self, ticket: int, rank: int, data: memoryview):
        self.ticket = ticket
        self.rank = rank
        self.tid: int | None = None  # the transfer id, once it began
        self.data = data
        self.offset = 0  # octets already put into segments
        self.acked = 0
        self.total = len(data)


class TransferSender:
    """Our outgoing transfers of one session; speaks through the session's ``out``."""

    def __init__(self, config: SessionConfig, out: Outbox):
        self.config = config
        self._out = out
        self._next_tid = 0
        self._next_ticket = 0
        self._queue: deque[_Outgoing] = deque()  # head may be being segmented; the rest by rank
        self._live: dict[int, _Outgoing] = {}  # started, awaiting the final ack
        self.acks_progressed = 0  # XFER_ACKs that moved a transfer on, for the transfer timeout

    @property
    def unacked(self) -> bool:
        """Octets went out that the peer has not acknowledged yet."""
        return any(o.offset > o.acked for o in self._live.values())

    @property
    def busy(self) -> bool:
        """A transfer is queued or awaits its final ack."""
        return bool(self._live or self._queue)

    @property
    def exhausted(self) -> bool:
        """Every transfer id of the session is used up."""
        return self._next_tid > U64_MAX

    def queue(self, data: bytes | bytearray | memoryview, rank: int = DEFAULT_RANK) -> int:
        """Queue one bundle (not copied) of class-of-service ``rank``; returns its ticket.

        The session checked it may go.
        """
        ticket = self._next_ticket
        self._next_ticket += 1
        out = _Outgoing(ticket, rank, memoryview(data).cast("B"))
        at = len(self._queue)
        while at > 0 and self._queue[at - 1].rank < rank and self._queue[at - 1].tid is None:
            at -= 1  # overtake what has lower rank and has not begun
        self._queue.insert(at, out)
        return ticket

    def next_segment(self, may_start: bool, peer_segment_mru: int) -> list[bytes | memoryview] | None:
        """Header and data of the next segment, or None. ``may_start``: a new transfer may begin."""
        while self._queue:
            out = self._queue[0]
            if out.tid is None:
                if not may_start:
                    self.drop_unstarted()
                    continue
                out.tid = self._next_tid
                self._next_tid += 1
                self._live[out.tid] = out
            size = min(out.total - out.offset, self.config.max_segment, peer_segment_mru)
            flags = SegmentFlag.NONE
            ext = b""
            if out.offset == 0:
                flags |= SegmentFlag.START
                if size < out.total:
                    ext = encode_transfer_length(out.total)
            if out.offset + size == out.total:
                flags |= SegmentFlag.END
                self._queue.popleft()
            header = encode_segment_header(flags, out.tid, size, ext)
            chunk = out.data[out.offset : out.offset + size]
            out.offset += size
            return [header, chunk] if size else [header]
        return None

    def on_ack(self, msg: XferAck) -> bool:
        """An XFER_ACK from the peer; True when it finished a transfer."""
        out = self._live.get(msg.transfer_id)
        if out is None:
            self._out.reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_ACK, "ack_unknown_transfer")
            return False
        if msg.length < out.acked or msg.length > out.offset:
            self._out.violation(
                "ack_bad_length", f"transfer {msg.transfer_id}: ack {msg.length}, sent {out.offset}, acked {out.acked}"
            )
            return False
        self.acks_progressed += msg.length > out.acked
        out.acked = msg.length
        final = out.acked == out.total and out.offset == out.total
        if final:
            del self._live[msg.transfer_id]
        self._out.events.append(TransferAcked(out.ticket, msg.length, final))
        return final

    def on_refuse(self, msg: XferRefuse) -> bool:
        """An XFER_REFUSE from the peer; True when it ended one of our transfers."""
        out = self._live.pop(msg.transfer_id, None)
        if out is None:
            self._out.reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_REFUSE, "refuse_unknown_transfer")
            return False
        if self._queue and self._queue[0] is out:
            self._queue.popleft()  # MUST NOT send further segments of it
        self._out.events.append(TransferRefused(out.ticket, msg.reason))
        return True

    def drop_unstarted(self) -> None:
        # Ending: a transfer not yet begun must not begin (RFC 9174 6.1)
        keep: deque[_Outgoing] = deque()
        for out in self._queue:
            if out.tid is not None:
                keep.append(out)
            else:
                self._out.events.append(TransferFailed(out.ticket, "session terminating"))
        self._queue = keep

    def fail_all(self, reason: str) -> None:
        """The session ended: every transfer not finished fails with ``reason``."""
        for ticket in [o.ticket for o in self._live.values()] + [o.ticket for o in self._queue if o.tid is None]:
            self._out.events.append(TransferFailed(ticket, reason))
        self._live.clear()
        self._queue.clear()
