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
from collections import Counter
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
    Lazy,
    LtpSettings,
    Outgoing,
    Peer,
    Timer,
    outgoing,
)
from hilnet.bundle.cos import DEFAULT_RANK

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
        send: Callable[[Outgoing | Lazy], None],
        first_serial: int = 1,
        rank: int = DEFAULT_RANK,
    ):
        self.settings = settings
        self.number = number
        self.rank = rank
        self.peer = peer
        self.block = block
        self._send = send
        self.events: list[Event] = []
        self.state = ExportState.SENDING
        self.received = Ranges()  # octets the peer claimed
        self._serials: Iterator[int] = itertools.count(first_serial)
        self._checkpoints: dict[int, Timer] = {}  # checkpoint serial -> its timer
        self._reports_seen: dict[int, ReportSeg] = {}
        self._cancel: Timer | None = None
        self._queued: list[Outgoing] = []  # our repairs and timed segments not yet sent (dropped if we close)
        self._first_done = False  # the first pass's last segment was made
        self.retransmitted = 0  # data octets sent again
        self.stats: Counter[str] = Counter()  # the engine's counters, where it gives them
        self.outcome = ""  # why it closed ("" = done)

    # --- driving ---------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the whole block as red data, the last segment a checkpoint (EORP, EOB)."""
        self.stats["red_bytes_sent"] += len(self.block)
        self._send(Lazy(self.peer.engine, self._first_pass(), self.rank))

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
    def unsent(self) -> bool:
        """A checkpoint (so data before it) still waits for its turn on the link."""
        return not self._first_done or any(not t.armed for t in self._checkpoints.values())

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
        if self.state is not ExportState.SENDING or self._reports_seen.get(rs.serial) == rs:
            return  # a report repeated: handled once (a restarted receiver may reuse a serial with new claims)
        self._reports_seen[rs.serial] = rs
        self._checkpoints.pop(rs.checkpoint, None)
        own = Ranges()
        for k in rs.claims:
            own.add(rs.lower + k.offset, rs.lower + k.offset + k.length)
        forgot = any(not own.covers(s, e) for s, e in self.received.within(rs.lower, rs.upper))
        if forgot:
            # The receiver no longer has data it claimed: it restarted (its memory is not durable until the
            # block is stored). Believe this report alone, or the block could be counted done and be lost,
            # and send it all it lacks, not only what this report's scope holds.
            self.stats["receiver_forgot"] += 1
            self.received = Ranges()
        for s, e in own.within(rs.lower, rs.upper):
            self.received.add(s, e)
        if self.received.covers(0, len(self.block)):
            self.close("")
            return
        gaps = self.received.gaps(0, len(self.block)) if forgot else self.received.gaps(rs.lower, rs.upper)
        if gaps:
            again = sum(e - s for s, e in gaps)
            self.retransmitted += again
            self.stats["red_bytes_resent"] += again
            self._send_ranges(gaps, report=rs.serial)
        elif not self._checkpoints and self._first_done:  # nothing in flight would bring another report
            self.cancel(CancelReason.SYS_CNCLD, "the receiver's reports leave data missing that none asks for")

    def _first_pass(self) -> Iterator[Outgoing]:
        """The block's first pass, made segment by segment as the pacer takes them (no block's worth of
        datagrams waits in memory, and the first leaves at once); it stops if the session closes."""
        for out in self._segments([(0, len(self.block))], report=0):
            if self.state is not ExportState.SENDING:
                return
            yield out

    def _send_ranges(self, ranges: list[tuple[int, int]], report: int) -> None:
        for out in self._segments(ranges, report):
            self._queued.append(out)
            self._send(out)

    def _segments(self, ranges: list[tuple[int, int]], report: int) -> Iterator[Outgoing]:
        """``ranges`` of the block as segments; the last is a checkpoint, and on the first pass (``report`` 0)
        so is one every ``checkpoint_every`` bytes, so that losses are reported and repaired while the rest
        of a large block is still on its way. Repairs go ahead of first-pass data."""
        size, every = self.settings.segment_size, self.settings.checkpoint_every
        pieces = [(o, min(o + size, e)) for s, e in ranges for o in range(s, e, size)] or [(0, 0)]
        repair = report != 0
        for i, (s, e) in enumerate(pieces):
            data = self.block[s:e]
            last = i == len(pieces) - 1
            if not last and (repair or every <= 0 or e // every == s // every):
                seg = Segment(T.RED, self.settings.engine_id, self.number, DataSeg(BUNDLE_CLIENT, s, data))
                yield outgoing(self.peer.engine, seg, control=repair)
                continue
            serial = next(self._serials) % MAX_SERIAL
            cp = DataSeg(BUNDLE_CLIENT, s, data, serial, report)
            # Only a segment that ends the block says so (EORP, EOB); others are plain checkpoints.
            kind = T.RED_CP_EORP_EOB if e == len(self.block) else T.RED_CP
            timer = Timer(
                outgoing(self.peer.engine, Segment(kind, self.settings.engine_id, self.number, cp), control=repair)
            )
            self._arm_on_send(timer)
            self._checkpoints[serial] = timer
            if last and not repair:
                self._first_done = True
            yield timer.out

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
        self.stats["timeouts_" + ("cancel" if timer is self._cancel else "checkpoint")] += 1
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
