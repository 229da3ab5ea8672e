"""The receiving side of one LTP session (RFC 5326 section 6; an "import session"), sans-I/O.

Red data is copied into the block as it comes, in any order, and its ranges
noted. Each new checkpoint is answered with a report segment (RS) claiming
what arrived within the report's scope (section 6.11: a primary report from
the previous primary report's upper bound, or zero, to the checkpoint's upper
bound; a secondary report, answering a checkpoint sent in response to one of
our reports, over that report's scope). A report has a timer, armed when it
leaves and counting only while the plan says the sender can answer; it is
sent again until its report-acknowledgement (RA) comes, ``max_retries`` times,
then the session is cancelled (CR, RLEXC).

The one rule that keeps "nothing lost" true over LTP: once the whole red part
is here the block is handed to the agent (:class:`BlockReceived`) and the
report that would tell the sender so waits for :meth:`ImportSession.accept`,
i.e. until the agent stored the bundle durably, as TCPCLv4's final XFER_ACK
does. Then the session closes; the engine answers a late checkpoint of it. :meth:`ImportSession.refuse` cancels the session instead (CR, SYS_CNCLD)
and the sender keeps its copy. A cancel from the sender (CS) is acknowledged
(CAS) and drops what arrived.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from enum import Enum

from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.ltp_ranges import Ranges
from hilnet.agent.cla.ltp_segment import Cancel, CancelAck, CancelReason, Claim, DataSeg, ReportAck, ReportSeg, Segment
from hilnet.agent.cla.ltp_segment import SegType as T
from hilnet.agent.cla.ltp_session import (
    BlockReceived,
    Event,
    ImportEnded,
    Limited,
    LtpSettings,
    Outgoing,
    Peer,
    Timer,
    outgoing,
)

MAX_CLAIMS_PER_REPORT = 64  # claims in one RS: a report of a badly holed block goes as several RS


class ImportState(Enum):
    RECEIVING = "receiving"
    DELIVERING = "delivering"  # the red part is complete and with the agent; the final report waits for it
    DELIVERED = "delivered"  # stored by the agent; waiting for the last report's RA
    CANCELLING = "cancelling"  # our CR is out, waiting for its CAR
    CLOSED = "closed"


class ImportSession:
    """The block the sender ``peer`` sends in its session ``number``; segments out via ``send``."""

    def __init__(
        self,
        settings: LtpSettings,
        peer: Peer,
        number: int,
        send: Callable[[Outgoing], None],
        holding: Holding | None = None,
        first_serial: int = 1,
    ):
        self.settings = settings
        self.peer = peer
        self.number = number
        self._send = send
        self.hold = holding or Holding(None)  # the block's share of the agent's memory budget
        self.events: list[Event] = []
        self.state = ImportState.RECEIVING
        self.buf = bytearray()
        self.got = Ranges()
        self.red_end: int | None = None
        self._serials = itertools.count(first_serial)
        self._reports: dict[int, tuple[ReportSeg, Timer]] = {}  # our RS serial -> (its scope, its timer)
        self._answered: dict[int, int] = {}  # checkpoint serial -> the serial of the first RS answering it
        self._scopes: dict[int, tuple[int, int]] = {}  # RS serial -> its (lower, upper), acknowledged or not
        self._primary_upper = 0
        self._final: DataSeg | None = None  # the checkpoint whose answer waits for the agent
        self._cancel: Timer | None = None
        self.last_heard = 0  # when a segment of this session last arrived (ns)
        self.checkpoints_seen: set[int] = set()  # serials: a closed session answers only these again
        self.outcome = ""
        self.stats: Counter[str] = Counter()  # the engine's counters, where it gives them

    @property
    def complete(self) -> bool:
        return self.red_end is not None and self.got.covers(0, self.red_end)

    # --- driving ---------------------------------------------------------------------------

    def on_segment(self, seg: Segment, now: int) -> str | None:
        """A segment of this session from its sender; returns a counter key when it is not used."""
        self.last_heard = now
        c = seg.content
        if isinstance(c, DataSeg):
            return self._on_data(seg.type, c)
        if isinstance(c, ReportAck):
            entry = self._reports.pop(c.serial, None)
            if entry is not None and self.state is ImportState.DELIVERED and not self._reports:
                self._close("")
            return None if entry is not None else "report_ack_unknown"
        if isinstance(c, Cancel):  # CS
            self._control(Segment(T.CANCEL_ACK_TO_SENDER, self.peer.engine, self.number, CancelAck()))
            if self.state not in (ImportState.DELIVERED, ImportState.CLOSED):
                self._close(f"cancelled by the sender ({c.reason.name})")
            return None
        if self.state is ImportState.CANCELLING:  # CAR
            self._close(self.outcome)
        return None

    def accept(self) -> None:
        """The agent stored the block: now the report that completes it may go."""
        if self.state is not ImportState.DELIVERING:
            return
        self.state = ImportState.DELIVERED
        if self._final is not None:
            # Closed at once, not on the report's RA: the engine remembers the block as stored and answers a
            # later checkpoint of it with a report claiming all of it, which is all a kept session would do.
            # So no session stays open a light time after its bundle is stored.
            self._report(self._final)
            self._final = None
            self._close("")
        # else the block was completed by repairs whose checkpoint is still on its way: it is answered,
        # and the session closed, when it comes (or when the sender retransmits one).

    def close_stored(self) -> None:
        """The block is stored and its sender silent for long: close (the engine remembers it as stored)."""
        if self.state is ImportState.DELIVERED:
            self._close("")

    def refuse(self, why: str) -> None:
        """The agent did not take the block: cancel (the sender keeps its copy)."""
        self.cancel(CancelReason.SYS_CNCLD, why)

    def cancel(self, reason: CancelReason, why: str) -> None:
        if self.state in (ImportState.CANCELLING, ImportState.CLOSED, ImportState.DELIVERED):
            return
        self._release()
        self._reports.clear()
        self.state = ImportState.CANCELLING
        self.outcome = why
        seg = Segment(T.CANCEL_FROM_RECEIVER, self.peer.engine, self.number, Cancel(reason))
        self._cancel = self._timed(seg)

    def on_timer(self, now: int) -> None:
        if self._cancel is not None:
            if self._cancel.deadline is not None and self._cancel.deadline <= now:
                if self._cancel.retries >= self.settings.max_retries:
                    self._close(self.outcome)
                else:
                    self._resend(self._cancel)
            return
        for rs, timer in list(self._reports.values()):
            if timer.deadline is None or timer.deadline > now:
                continue
            if timer.retries >= self.settings.max_retries:
                if self.state is ImportState.DELIVERED:
                    self._close("")  # stored: the sender's next checkpoint is answered from the closed list
                else:
                    self.cancel(CancelReason.RLEXC, f"report {rs.serial} unacknowledged after {timer.retries} tries")
                return
            self._resend(timer)

    def deadline(self) -> int | None:
        timers = [t for _, t in self._reports.values()] + ([self._cancel] if self._cancel else [])
        due = [t.deadline for t in timers if t.deadline is not None]
        return min(due) if due else None

    # --- internals ------------------------------------------------------------------------

    def _on_data(self, kind: T, d: DataSeg) -> str | None:
        if kind in (T.GREEN, T.GREEN_EOB):
            return "green_data_ignored"  # a bundle is all red; hilnet sends no green data
        if self.state is ImportState.CANCELLING or self.state is ImportState.CLOSED:
            return "data_after_cancel"
        end = d.offset + len(d.data)
        if end > self.settings.max_block:
            self.cancel(CancelReason.SYS_CNCLD, f"block past {self.settings.max_block} bytes")
            self.events.append(Limited("block", f"a block past {self.settings.max_block} bytes", self.peer.node))
            return "block_too_big"
        if self.red_end is not None and end > self.red_end:
            return "data_past_red_part"
        if kind is not T.RED and self.red_end is None and kind is not T.RED_CP:
            if self.got.within(end, 1 << 64):
                return "red_part_end_before_data"
            self.red_end = end
        if self.state is ImportState.RECEIVING and not self._store(d, end):
            return "memory_budget"
        if kind is not T.RED:
            self._on_checkpoint(d)
        return None

    def _store(self, d: DataSeg, end: int) -> bool:
        if end > len(self.buf):
            if not self.hold.grow(end - len(self.buf)):
                self.cancel(CancelReason.SYS_CNCLD, "the agent's memory budget for incoming bundles is full")
                self.events.append(Limited("memory", f"an LTP block at {end} bytes", self.peer.node))
                return False
            self.buf.extend(bytes(end - len(self.buf)))
        if self.got.add(d.offset, end):
            self.buf[d.offset : end] = d.data
        else:
            self.stats["red_bytes_duplicate"] += end - d.offset
        if self.complete:
            self.state = ImportState.DELIVERING
            self.events.append(BlockReceived(self.peer.engine, self.number, bytes(self.buf[: self.red_end])))
            self._release()  # handed over: the agent's commit owns the bytes now
        return True

    def _on_checkpoint(self, cp: DataSeg) -> None:
        self.checkpoints_seen.add(cp.checkpoint)
        if self.state is ImportState.DELIVERING:
            self._final = cp  # answered once the agent stored the block
            return
        if self.state is ImportState.DELIVERED:  # stored: say so of all of it, and be done
            self._report(cp)
            self._close("")
            return
        if cp.checkpoint in self._answered:  # a retransmitted checkpoint: our answer was lost, send it again
            entry = self._reports.get(self._answered[cp.checkpoint])
            if entry is not None and entry[1].armed:
                self._resend(entry[1])
            return
        self._report(cp)

    def _report(self, cp: DataSeg) -> None:
        upper = cp.offset + len(cp.data)
        earlier = self._scopes.get(cp.report) if cp.report else None
        if self.state is ImportState.DELIVERED and self.red_end is not None:
            lower, upper = 0, self.red_end  # stored: say so of all of it (6.11 allows 0 and the highest bound)
        elif earlier is not None:
            lower, upper = earlier
        elif cp.report:
            lower = 0  # answers a report we do not know: report from the start (RFC 5326 6.11 allows it)
        else:
            lower = self._primary_upper if self._primary_upper < upper else 0
            self._primary_upper = upper
        have = self.got.within(lower, upper)
        chunks = [have[i : i + MAX_CLAIMS_PER_REPORT] for i in range(0, len(have), MAX_CLAIMS_PER_REPORT)] or [[]]
        hi = lower
        for i, chunk in enumerate(chunks):
            # The segments' scopes partition the report's (RFC 5326 6.11): each picks up where the last ended.
            lo, hi = hi, upper if i == len(chunks) - 1 else chunk[-1][1]
            serial = next(self._serials)
            rs = ReportSeg(serial, cp.checkpoint, hi, lo, tuple(Claim(s - lo, e - s) for s, e in chunk))
            self._answered.setdefault(cp.checkpoint, serial)
            self._scopes[serial] = (lo, hi)
            self._reports[serial] = (rs, self._timed(Segment(T.REPORT, self.peer.engine, self.number, rs)))

    def _timed(self, seg: Segment) -> Timer:
        timer = Timer(outgoing(self.peer.engine, seg, control=True))

        def sent(now: int) -> None:
            timer.arm(self.peer.plan, now, self.settings)

        timer.out.on_sent = sent
        self._send(timer.out)
        return timer

    def _resend(self, timer: Timer) -> None:
        self.stats["timeouts_" + ("cancel" if timer is self._cancel else "report")] += 1
        timer.retries += 1
        timer.deadline, timer.armed = None, False
        timer.out = Outgoing(timer.out.peer, timer.out.datagram, timer.out.on_sent, True)
        self._send(timer.out)

    def _control(self, seg: Segment) -> None:
        self._send(outgoing(self.peer.engine, seg, control=True))

    def _release(self) -> None:
        self.buf = bytearray()
        self.hold.release()

    def _close(self, why: str) -> None:
        if self.state is ImportState.CLOSED:
            return
        self.outcome = why
        self.state = ImportState.CLOSED
        self._release()
        self._reports.clear()
        self._cancel = None
        self.events.append(ImportEnded(self.peer.engine, self.number, why))
