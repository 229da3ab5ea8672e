"""The sending side of one LTP session (RFC 5326 section 6; an "export session" in ION's words), sans-I/O.

A block (one bundle) goes out as red data segments of ``segment_size``
octets, the last one a checkpoint that also marks the end of the red part and
of the block (all of a bundle is red). Each checkpoint has a retransmission
timer, armed when the segment actually leaves (the pacer says when) and
counting only while the plan says the peer can answer
(:meth:`~hilnet.agent.cla.ltp_plan.PeerPlan.expiry`).

A report segment (RS) is acknowledged (RA) at once, always; a new one adds
its claims to what the peer is known to hold, stops the timer of the
checkpoint it answers, and the octets of its scope not claimed are sent again
(exactly those ranges) with a new checkpoint at the end. When the claims
cover the whole block the session is done (:class:`ExportDone`). A checkpoint
that times out is sent again; after ``max_retries`` the session is cancelled
(CS, reason RLEXC), :class:`ExportFailed` tells the sender, which keeps its
bundle. A cancel from the receiver (CR) is acknowledged (CAR) and fails the send.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from enum import Enum

from hilnet.agent.cla.ltp_ranges import Ranges
from hilnet.agent.cla.ltp_segment import Cancel, CancelAck, CancelReason, DataSeg, ReportAck, ReportSeg, Segment
from hilnet.agent.cla.ltp_segment import SegType as T
from hilnet.agent.cla.ltp_session import (
    BUNDLE_CLIENT,
    Event,
    ExportDone,
    ExportFailed,
    LtpSettings,
    Outgoing,
    Peer,
    Timer,
    outgoing,
)

MAX_SERIAL = 1 << 63


class ExportState(Enum):
    SENDING = "sending"  # data out or waiting for reports
    CANCELLING = "cancelling"  # our CS is out, waiting for its CAS
    CLOSED = "closed"


class ExportSession:
    """One block to ``peer``; segments to send go to ``send``, events to ``events``."""

    def __init__(
        self,
        settings: LtpSettings,
        number: int,
        peer: Peer,
        block: bytes,
        send: Callable[[Outgoing], None],
        first_serial: int = 1,
    ):
        self.settings = settings
        self.number = number
        self.peer = peer
        self.block = block
        self._send = send
        self.events: list[Event] = []
        self.state = ExportState.SENDING
        self.received = Ranges()  # octets the peer claimed
        self._serials: Iterator[int] = itertools.count(first_serial)
        self._checkpoints: dict[int, Timer] = {}  # checkpoint serial -> its timer
        self._reports_seen: set[int] = set()
        self._cancel: Timer | None = None
        self._queued: list[Outgoing] = []  # our data segments not yet sent (dropped if we close)
        self.retransmitted = 0  # data octets sent again
        self.outcome = ""  # why it closed ("" = done)

    # --- driving ---------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the whole block as red data, the last segment a checkpoint (EORP, EOB)."""
        self._send_ranges([(0, len(self.block))], report=0)

    def on_segment(self, seg: Segment, now: int) -> None:
        """A segment of this session from the receiver: RS, CR or CAS."""
        c = seg.content
        if isinstance(c, ReportSeg):
            self._on_report(c)
        elif isinstance(c, Cancel) and seg.type is T.CANCEL_FROM_RECEIVER:
            self._control(Segment(T.CANCEL_ACK_TO_RECEIVER, self.settings.engine_id, self.number, CancelAck()))
            if self.state is ExportState.SENDING:
                self.close(f"cancelled by the receiver ({c.reason.name})")
            elif self.state is ExportState.CANCELLING:
                self.close(self.outcome)
        elif isinstance(c, CancelAck) and self.state is ExportState.CANCELLING:
            self.close(self.outcome)

    def on_timer(self, now: int) -> None:
        """Retransmit what timed out by ``now``; give up past ``max_retries``."""
        if self._cancel is not None and _due(self._cancel, now):
            if self._cancel.retries >= self.settings.max_retries:
                self.close(self.outcome)  # the receiver never acknowledged our cancel: forget the session
            else:
                self._resend(self._cancel)
            return
        for serial, timer in list(self._checkpoints.items()):
            if not _due(timer, now):
                continue
            if timer.retries >= self.settings.max_retries:
                self.cancel(CancelReason.RLEXC, f"checkpoint {serial} unanswered after {timer.retries} retransmissions")
                return
            self._resend(timer)

    def cancel(self, reason: CancelReason, why: str) -> None:
        """Cancel the session (CS to the receiver) and fail the send with ``why``."""
        if self.state is not ExportState.SENDING:
            return
        self._drop_queued()
        self._checkpoints.clear()
        self.state = ExportState.CANCELLING
        self.outcome = why
        self.events.append(ExportFailed(self.number, why))
        seg = Segment(T.CANCEL_FROM_SENDER, self.settings.engine_id, self.number, Cancel(reason))
        self._cancel = self._timed(seg)

    def deadline(self) -> int | None:
        """The earliest armed timer, or None."""
        timers = list(self._checkpoints.values()) + ([self._cancel] if self._cancel else [])
        due = [t.deadline for t in timers if t.deadline is not None]
        return min(due) if due else None

    @property
    def stuck(self) -> bool:
        """Open, every timer armed, and none will ever run out: the plan never lets the peer answer again."""
        timers = list(self._checkpoints.values()) + ([self._cancel] if self._cancel else [])
        return (
            self.state is not ExportState.CLOSED
            and bool(timers)
            and all(t.armed and t.deadline is None for t in timers)
        )

    # --- internals ------------------------------------------------------------------------

    def _on_report(self, rs: ReportSeg) -> None:
        self._control(Segment(T.REPORT_ACK, self.settings.engine_id, self.number, ReportAck(rs.serial)))
        if self.state is not ExportState.SENDING or rs.serial in self._reports_seen:
            return
        self._reports_seen.add(rs.serial)
        self._checkpoints.pop(rs.checkpoint, None)
        for k in rs.claims:
            self.received.add(rs.lower + k.offset, rs.lower + k.offset + k.length)
        if self.received.covers(0, len(self.block)):
            self.close("")
            return
        gaps = self.received.gaps(rs.lower, rs.upper)
        if gaps:
            self.retransmitted += sum(e - s for s, e in gaps)
            self._send_ranges(gaps, report=rs.serial)

    def _send_ranges(self, ranges: list[tuple[int, int]], report: int) -> None:
        size = self.settings.segment_size
        pieces = [(o, min(o + size, e)) for s, e in ranges for o in range(s, e, size)] or [(0, 0)]
        for i, (s, e) in enumerate(pieces):
            data = self.block[s:e]
            if i < len(pieces) - 1:
                seg = Segment(T.RED, self.settings.engine_id, self.number, DataSeg(BUNDLE_CLIENT, s, data))
                out = outgoing(self.peer.engine, seg, control=False)
                self._queued.append(out)
                self._send(out)
                continue
            serial = next(self._serials) % MAX_SERIAL
            cp = DataSeg(BUNDLE_CLIENT, s, data, serial, report)
            # Only a segment that ends the block says so (EORP, EOB); a retransmission's last is a plain checkpoint.
            kind = T.RED_CP_EORP_EOB if e == len(self.block) else T.RED_CP
            timer = self._timed(Segment(kind, self.settings.engine_id, self.number, cp), control=False)
            self._checkpoints[serial] = timer

    def _timed(self, seg: Segment, control: bool = True) -> Timer:
        timer = Timer(outgoing(self.peer.engine, seg, control=control))
        self._arm_on_send(timer)
        self._queued.append(timer.out)
        self._send(timer.out)
        return timer

    def _arm_on_send(self, timer: Timer) -> None:
        def sent(now: int) -> None:
            timer.arm(self.peer.plan, now, self.settings)

        timer.out.on_sent = sent

    def _resend(self, timer: Timer) -> None:
        timer.retries += 1
        timer.deadline, timer.armed = None, False
        out = Outgoing(timer.out.peer, timer.out.datagram, timer.out.on_sent, timer.out.control)
        timer.out = out
        self._queued.append(out)
        self._send(out)

    def _control(self, seg: Segment) -> None:
        self._send(outgoing(self.peer.engine, seg, control=True))

    def _drop_queued(self) -> None:
        for out in self._queued:
            out.dropped = True
        self._queued = []

    def close(self, why: str) -> None:
        """Close now: done if ``why`` is "", else the send fails with ``why``."""
        if self.state is ExportState.SENDING:
            self.events.append(ExportDone(self.number) if not why else ExportFailed(self.number, why))
        self.outcome = why
        self.state = ExportState.CLOSED
        self._drop_queued()
        self._checkpoints.clear()
        self._cancel = None


def _due(timer: Timer, now: int) -> bool:
    return timer.deadline is not None and timer.deadline <= now
