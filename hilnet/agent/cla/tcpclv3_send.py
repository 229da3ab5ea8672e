"""The sending half of a TCPCLv3 session: segmentation, LENGTH, and acks and refusals applied in order.

Sans-I/O, driven by :class:`~hilnet.agent.cla.tcpclv3_session.TcpclV3Session`.
TCPCLv3 has no transfer ids: every ACK_SEGMENT and REFUSE_BUNDLE is about the
oldest bundle not yet finished (RFC 7242 5.4), so bundles go out one after
another, never interleaved, and those begun wait in a first-in-first-out
list for their acks. Bundles are pipelined: the next one starts while the
previous waits for its final ack. An ack counts the bundle's octets received
so far; a bundle is finished when an ack covers all of it (or the peer
refused it with "completed": it has the bundle already). Sizes in bytes.

Classes of service: bundles not yet begun wait by rank (higher first, then in
order of queueing), so an expedited bundle starts right after the bundle
being segmented. Events name a bundle by the ticket :meth:`TransferSender.queue` gave.
"""

from __future__ import annotations

from collections import deque

from hilnet.agent.cla.tcpcl_events import Outbox, TransferAcked, TransferFailed, TransferRefused
from hilnet.agent.cla.tcpclv3_events import SessionConfig
from hilnet.agent.cla.tcpclv3_messages import RefuseReason, SegmentFlag
from hilnet.agent.cla.tcpclv3_wire import encode_length, encode_segment_header
from hilnet.bundle.cos import DEFAULT_RANK


class _Outgoing:
    __slots__ = ("ticket", "rank", "data", "offset", "acked", "total", "begun")

    def __init__(self, ticket: int, rank: int, data: memoryview):
        self.ticket = ticket
        self.rank = rank
        self.data = data
        self.offset = 0  # octets already put into segments
        self.acked = 0
        self.total = len(data)
        self.begun = False


class TransferSender:
    """Our outgoing bundles of one session; speaks through the session's ``out``."""

    def __init__(self, config: SessionConfig, out: Outbox):
        self.config = config
        self._out = out
        self._next_ticket = 0
        self._queue: deque[_Outgoing] = deque()  # head may be being segmented; the rest by rank
        self._live: deque[_Outgoing] = deque()  # begun, not finished: acks apply to the first
        self.acks_progressed = 0  # acks that moved a bundle on, for the transfer timeout

    @property
    def unacked(self) -> bool:
        """Octets went out that the peer has not acknowledged yet."""
        return any(o.offset > o.acked for o in self._live)

    @property
    def busy(self) -> bool:
        return bool(self._live or self._queue)

    def queue(self, data: bytes | bytearray | memoryview, rank: int = DEFAULT_RANK) -> int:
        """Queue one bundle (not copied) of class-of-service ``rank``; returns its ticket."""
        ticket = self._next_ticket
        self._next_ticket += 1
        out = _Outgoing(ticket, rank, memoryview(data).cast("B"))
        at = len(self._queue)
        while at > 0 and self._queue[at - 1].rank < rank and not self._queue[at - 1].begun:
            at -= 1  # overtake what has lower rank and has not begun
        self._queue.insert(at, out)
        return ticket

    def next_segment(self, lengths: bool) -> list[bytes | memoryview] | None:
        """The next segment (with a LENGTH before a bundle's first when ``lengths``), or None."""
        if not self._queue:
            return None
        out = self._queue[0]
        chunks: list[bytes | memoryview] = []
        flags = SegmentFlag.NONE
        if not out.begun:
            out.begun = True
            self._live.append(out)
            flags |= SegmentFlag.START
            if lengths:
                chunks.append(encode_length(out.total))
        size = min(out.total - out.offset, self.config.max_segment)
        if out.offset + size == out.total:
            flags |= SegmentFlag.END
            self._queue.popleft()
        chunks.append(encode_segment_header(flags, size))
        if size:
            chunks.append(out.data[out.offset : out.offset + size])
        out.offset += size
        return chunks

    def on_ack(self, length: int) -> None:
        """An ACK_SEGMENT: ``length`` octets of the oldest unfinished bundle arrived."""
        if not self._live:
            self._out.violation("ack_without_bundle", f"ack of {length} octets with nothing sent")
            return
        out = self._live[0]
        if length > out.offset:
            self._out.violation("ack_bad_length", f"ack of {length} octets, {out.offset} sent of {out.total}")
            return
        if length <= out.acked:
            return  # a repeated ack changes nothing
        self.acks_progressed += 1
        out.acked = length
        final = length == out.total
        if final:
            self._live.popleft()
        self._out.events.append(TransferAcked(out.ticket, length, final))

    def on_refuse(self, reason: int) -> None:
        """A REFUSE_BUNDLE: the oldest unfinished bundle is refused (or, "completed", the peer has it)."""
        if not self._live:
            self._out.violation("refuse_without_bundle", f"refusal (reason {reason}) with nothing sent")
            return
        out = self._live.popleft()
        if self._queue and self._queue[0] is out:
            self._queue.popleft()  # send no further segment of it
        if reason == RefuseReason.COMPLETED:
            self._out.events.append(TransferAcked(out.ticket, out.total, True))
        else:
            self._out.events.append(TransferRefused(out.ticket, reason))

    def fail_all(self, reason: str) -> None:
        """The session ended: every bundle not finished fails with ``reason``."""
        tickets = [o.ticket for o in self._live] + [o.ticket for o in self._queue if not o.begun]
        for ticket in tickets:
            self._out.events.append(TransferFailed(ticket, reason))
        self._live.clear()
        self._queue.clear()
