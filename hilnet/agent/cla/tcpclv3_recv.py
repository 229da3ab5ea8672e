"""The receiving half of a TCPCLv3 session: reassembly, and answers sent strictly in order.

Sans-I/O, driven by :class:`~hilnet.agent.cla.tcpclv3_session.TcpclV3Session`,
which parses segment headers and hands over the octets after them. The peer
applies our ACK_SEGMENTs and REFUSE_BUNDLEs to its oldest unfinished bundle
(RFC 7242 5.4), so our answers must leave in the order the bundles came:
they wait in one queue. Each segment but a bundle's last is acknowledged once
buffered; the last one's ack (covering the whole bundle) waits in the queue
for :meth:`TransferReceiver.accept`, i.e. for the agent's commit, and holds
back every answer behind it.

Refusing: where both sides offered refusal, a bundle the agent does not take,
or one too big for us or for the agent's memory budget, gets REFUSE_BUNDLE
and the rest of its segments are dropped. Without refusal (ION offers none)
there is no way to say no but to end the session, so the queue ends in a
*busy* mark and the session sends SHUTDOWN "busy" with a reconnection delay:
the peer keeps the bundle and offers it again later. Sizes in bytes.
"""

from __future__ import annotations

from collections import deque

from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.tcpcl_events import LimitReached, Outbox, TransferReceived
from hilnet.agent.cla.tcpclv3_events import SessionConfig
from hilnet.agent.cla.tcpclv3_messages import DataSegment, RefuseReason
from hilnet.agent.cla.tcpclv3_wire import encode_ack, encode_refuse

BUSY = b""  # the queue mark that ends the session "busy" (a refusal we cannot send)


class _Incoming:
    __slots__ = ("ticket", "buf", "refused", "announced")

    def __init__(self, ticket: int, announced: int | None):
        self.ticket = ticket
        self.buf = bytearray()
        self.refused = False
        self.announced = announced  # from a LENGTH message before it, if any


class _Answer:
    """One answer in the queue: ready octets (or BUSY), or None while the agent commits ``ticket``."""

    __slots__ = ("ticket", "length", "octets")

    def __init__(self, ticket: int | None, length: int, octets: bytes | None):
        self.ticket = ticket
        self.length = length
        self.octets = octets


class TransferReceiver:
    """The peer's bundles to us in one session; speaks through the session's ``out``."""

    def __init__(self, config: SessionConfig, out: Outbox, holding: Holding | None = None):
        self.config = config
        self._out = out
        self.refusals = False  # REFUSE_BUNDLE negotiated (set when the session comes up)
        self._rx: _Incoming | None = None
        self._seg: DataSegment | None = None
        self._announced: int | None = None
        self._next_ticket = 0
        self._answers: deque[_Answer] = deque()
        self._hold = holding or Holding(config.budget)  # the partial bundle's bytes in the agent's budget
        self.seg_left = 0  # octets of the current segment still to come
        self.segments_done = 0  # progress, for the partial-transfer timeout

    @property
    def receiving(self) -> bool:
        """A bundle has begun and its last segment has not come."""
        return self._rx is not None

    @property
    def partial(self) -> bool:
        """A bundle we mean to keep is arriving (for the partial-transfer timeout)."""
        return self._rx is not None and not self._rx.refused

    @property
    def awaiting_commit(self) -> bool:
        return any(a.octets is None for a in self._answers)

    @property
    def busy(self) -> bool:
        return bool(self._rx is not None or self._answers)

    def on_length(self, length: int) -> None:
        """A LENGTH message: the size of the bundle whose first segment comes next."""
        self._announced = length

    def on_segment(self, seg: DataSegment) -> None:
        """A segment header; the session checked it fits the stream (a START only after an END)."""
        self._seg = seg
        self.seg_left = seg.length
        if seg.start:
            self._hold.release()
            self._rx = _Incoming(self._next_ticket, self._announced)
            self._next_ticket += 1
            self._announced = None
        rx = self._rx
        if rx is not None and not rx.refused:
            self._check_room(rx, len(rx.buf) + seg.length)
        if not self.seg_left:
            self._segment_done()

    def segment_data(self, data: memoryview) -> int:
        """Octets after a segment header; takes at most ``seg_left`` of them and returns how many."""
        take = min(self.seg_left, len(data))
        rx = self._rx
        if rx is not None and not rx.refused:
            rx.buf += data[:take]
        self.seg_left -= take
        if not self.seg_left:
            self._segment_done()
        return take

    def accept(self, ticket: int) -> bool:
        """The agent committed bundle ``ticket``: its final ack may go. False if none waited."""
        return self._answer(ticket, None)

    def refuse(self, ticket: int, reason: RefuseReason) -> bool:
        """The agent did not take bundle ``ticket``: refuse it (or end the session busy)."""
        return self._answer(ticket, reason)

    def take_ready(self) -> tuple[list[bytes], bool]:
        """Answers that may leave now, in order, and whether a BUSY mark came up (end the session)."""
        ready: list[bytes] = []
        while self._answers and self._answers[0].octets is not None:
            octets = self._answers.popleft().octets
            if octets is BUSY:
                return ready, True
            ready.append(octets)  # type: ignore[arg-type]  # not None: checked above
        return ready, False

    def drop(self) -> None:
        """The session ended: a partial bundle is dropped, never delivered, and nothing more is said."""
        self._rx = None
        self._answers.clear()
        self._hold.release()

    # --- internals -----------------------------------------------------------

    def _answer(self, ticket: int, reason: RefuseReason | None) -> bool:
        for a in self._answers:
            if a.ticket == ticket and a.octets is None:
                a.octets = encode_ack(a.length) if reason is None else self._refusal(reason)
                return True
        return False

    def _refusal(self, reason: RefuseReason) -> bytes:
        return encode_refuse(reason) if self.refusals else BUSY

    def _check_room(self, rx: _Incoming, size: int) -> None:
        limit = self.config.transfer_mru
        if max(size, rx.announced or 0) > limit:
            self._out.violation("bundle_too_big", f"bundle {rx.ticket} passes {limit} bytes")
            self._refuse(rx, RefuseReason.NO_RESOURCES)
        elif not self._hold.grow(size - len(rx.buf)):  # the segment's octets, within the MRU just checked
            self._out.events.append(LimitReached("memory", f"bundle {rx.ticket} at {size} bytes"))
            self._refuse(rx, RefuseReason.NO_RESOURCES)

    def _refuse(self, rx: _Incoming, reason: RefuseReason) -> None:
        rx.refused = True
        rx.buf = bytearray()
        self._hold.release()
        self._answers.append(_Answer(None, 0, self._refusal(reason)))

    def _segment_done(self) -> None:
        seg, rx = self._seg, self._rx
        self._seg = None
        self.segments_done += 1
        if seg is None or rx is None:
            return
        if rx.refused:
            if seg.end:
                self._rx = None
            return
        if not seg.end:
            if seg.length:  # an empty segment moves nothing on: its ack would repeat the last one
                self._answers.append(_Answer(None, 0, encode_ack(len(rx.buf))))
            return
        self._rx = None
        self._hold.release()  # handed over: the agent's commit owns the bytes now
        if rx.announced is not None and rx.announced != len(rx.buf):
            self._out.violation(
                "length_mismatch", f"bundle {rx.ticket}: {len(rx.buf)} octets, LENGTH said {rx.announced}"
            )
            self._answers.append(_Answer(None, 0, self._refusal(RefuseReason.RETRANSMIT)))
            return
        self._answers.append(_Answer(rx.ticket, len(rx.buf), None))
        self._out.events.append(TransferReceived(rx.ticket, bytes(rx.buf)))
