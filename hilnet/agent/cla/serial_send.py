"""The sending half of the serial CLA: segments in flight, acks, retransmission.

No I/O and no clock of its own: :class:`SerialSession` asks it for the next
DATA frame when the line has room and hands it every ACK.

A serial line never reorders, which makes loss detection exact: when an ACK
shows a segment received whose first transmission left after another
segment's latest transmission, and that other segment is not received, the
other one was lost. It is resent at once, without waiting for a timeout.
Timeouts (RTO) only catch losses at the tail of what was sent.

Classes of service: each transfer has a rank (:mod:`hilnet.bundle.cos`, higher
first). The next segment always comes from the highest-ranked transfer that
has one to send, so an expedited bundle queued behind a bulk transfer that is
half sent goes next, segment by segment, and the bulk transfer then resumes at
its next unsent segment: the segments it already sent stay in flight and are
acked as usual, so no byte goes twice. A queued transfer that outranks every
active transfer still sending new segments becomes active even when
``max_active`` are (the transfers it adds have all their segments sent, and
leave at their final ack).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

from hilnet.agent.cla.serial_frame import MAX_BITMAP, Ack, Data, segment_count
from hilnet.agent.cla.serial_timing import RttEstimator
from hilnet.bundle.cos import DEFAULT_RANK

SPAN = 1 + MAX_BITMAP * 8  # segments past the first unacked one an ACK can describe


@dataclass(slots=True, eq=False)
class OutgoingTransfer:
    """One bundle being sent: which segments left, when, and which are acked."""

    bundle_id: Hashable
    data: bytes
    transfer: int
    seg_size: int
    rank: int = DEFAULT_RANK  # class of service: higher goes first
    order: int = 0  # when it was queued, among this session's transfers
    count: int = 0
    next_new: int = 0  # first segment never sent
    cum: int = 0  # first segment not acked
    acked: bytearray = field(default_factory=bytearray)
    sends: list[int] = field(default_factory=list)  # transmissions per segment
    first_seq: list[int] = field(default_factory=list)
    last_seq: list[int] = field(default_factory=list)
    depart_ns: list[int] = field(default_factory=list)  # last byte of the latest copy left
    inflight: set[int] = field(default_factory=set)  # sent, not acked, not known lost
    lost: set[int] = field(default_factory=set)  # to resend

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Forget all progress: the receiver lost its state (it restarted)."""
        self.count = segment_count(len(self.data), self.seg_size)
        self.next_new = 0
        self.cum = 0
        self.acked = bytearray(self.count)
        self.sends = [0] * self.count
        self.first_seq = [-1] * self.count
        self.last_seq = [-1] * self.count
        self.depart_ns = [0] * self.count
        self.inflight = set()
        self.lost = set()

    @property
    def sort_key(self) -> tuple[int, int]:
        """Highest rank first, then first queued."""
        return (-self.rank, self.order)

    def segment(self, index: int, nonce: int) -> Data:
        start = index * self.seg_size
        payload = self.data[start : start + self.seg_size]
        return Data(nonce, self.transfer, index, len(self.data), self.seg_size, payload)

    def bytes_acked(self) -> int:
        """Payload bytes the receiver has confirmed (not counting the final segment)."""
        return sum(self.acked) * self.seg_size


class Sender:
    """All outgoing transfers of one session, by rank and then in the order they were queued.

    ``window`` caps segments in flight; ``max_active`` bundles are interleaved
    so one lost tail segment does not idle the line (more when a higher rank
    pre-empts, see the module docstring).
    """

    def __init__(self, nonce: int, seg_size: int, max_active: int, rtt: RttEstimator):
        self.nonce = nonce
        self.seg_size = seg_size
        self.max_active = max_active
        self.rtt = rtt
        self.window = 4
        self.queued: list[OutgoingTransfer] = []  # sorted by sort_key
        self.active: dict[int, OutgoingTransfer] = {}
        self.by_id: dict[Hashable, OutgoingTransfer] = {}
        self.n_inflight = 0
        self.regressions = 0  # transfers restarted because the peer forgot them
        self._seq = 0
        self._next_transfer = 1
        self._order = 0
        # (seq, transfer, index) in send order; stale entries are skipped lazily.
        self._timers: deque[tuple[int, OutgoingTransfer, int]] = deque()

    # -- queueing ---------------------------------------------------------

    def add(self, bundle_id: Hashable, data: bytes, rank: int = DEFAULT_RANK) -> OutgoingTransfer:
        """Queue a bundle of class-of-service ``rank`` (higher is sent first)."""
        if bundle_id in self.by_id:
            raise ValueError(f"bundle id {bundle_id!r} is already queued")
        self._order += 1
        t = OutgoingTransfer(bundle_id, bytes(data), self._next_transfer, self.seg_size, rank, self._order)
        self._next_transfer = self._next_transfer % 0xFFFFFFFF + 1
        self.by_id[bundle_id] = t
        bisect.insort(self.queued, t, key=lambda x: x.sort_key)
        return t

    def remove(self, t: OutgoingTransfer) -> None:
        """Drop a transfer (acked, refused or cancelled)."""
        self.by_id.pop(t.bundle_id, None)
        if self.active.pop(t.transfer, None) is not None:
            self.n_inflight -= len(t.inflight)
        else:
            try:
                self.queued.remove(t)
            except ValueError:
                pass
        t.inflight.clear()
        t.lost.clear()

    def pending(self) -> bool:
        return bool(self.queued or self.active)

    # -- choosing what to send --------------------------------------------

    def next_frame(self) -> tuple[OutgoingTransfer, int] | None:
        """The segment to send next, if the window allows one: by rank, and resends first within a rank."""
        ranked = sorted(self.active.values(), key=lambda t: t.sort_key)
        lost = [t for t in ranked if t.lost]
        best_lost = lost[0] if lost else None
        if self.n_inflight < self.window:
            for t in self._candidates(ranked):
                if best_lost is not None and best_lost.rank >= t.rank:
                    break  # a resend of this rank or above goes first
                if t.next_new < t.count and t.next_new < t.cum + SPAN:
                    self._activate(t)
                    return t, t.next_new
        if best_lost is not None:
            return best_lost, min(best_lost.lost)
        return None

    def idle_resend(self, now_ns: int, after_ns: int) -> tuple[OutgoingTransfer, int] | None:
        """With nothing else to send, the oldest segment in flight for ``after_ns`` (ns) or more.

        An idle line costs nothing to use: resending a segment whose ACK is
        overdue beats waiting out a backed-off RTO, at high error rates most of
        all, where resends of resends are lost and Karn's rule leaves no samples.
        """
        entry = self._oldest_live()
        if entry is None:
            return None
        _, t, index = entry
        return (t, index) if t.depart_ns[index] + after_ns <= now_ns else None

    def oldest_depart_ns(self) -> int | None:
        entry = self._oldest_live()
        return None if entry is None else entry[1].depart_ns[entry[2]]

    def _candidates(self, ranked: list[OutgoingTransfer]) -> Iterator[OutgoingTransfer]:
        """Active transfers and those allowed to start, best first (rank, then age)."""
        # the lowest rank still putting new segments on the line: what a pre-emptor displaces
        floor = min((t.rank for t in ranked if t.next_new < t.count), default=None)
        room = self.max_active - len(self.active)
        startable = []
        for t in self.queued:
            if room > 0:
                startable.append(t)
                room -= 1
            elif floor is not None and t.rank > floor:
                startable.append(t)  # pre-emption: it outranks a transfer still sending
            else:
                break  # queued is sorted: nothing behind may start either
        yield from sorted([*ranked, *startable], key=lambda t: t.sort_key)

    def _activate(self, t: OutgoingTransfer) -> None:
        if t.transfer not in self.active:
            self.queued.remove(t)
            self.active[t.transfer] = t

    def mark_sent(self, t: OutgoingTransfer, index: int, depart_ns: int) -> bool:
        """Record that segment ``index`` left (last byte at ``depart_ns``); True if a resend."""
        self._seq += 1
        resend = t.sends[index] > 0
        if t.first_seq[index] < 0:
            t.first_seq[index] = self._seq
        t.last_seq[index] = self._seq
        t.sends[index] += 1
        t.depart_ns[index] = depart_ns
        if index in t.lost:
            t.lost.discard(index)
        if index not in t.inflight:
            t.inflight.add(index)
            self.n_inflight += 1
        if index == t.next_new:
            t.next_new += 1
        self._timers.append((self._seq, t, index))
        return resend

    # -- acks and timers --------------------------------------------------

    def on_ack(self, ack: Ack, now_ns: int) -> OutgoingTransfer | None:
        """Apply an ACK; returns the transfer when the ack is FINAL (it is done)."""
        t = self.active.get(ack.transfer)
        if t is None:
            return None
        if ack.final:
            last = t.count - 1
            if t.sends[last] == 1:
                self.rtt.sample(now_ns - t.depart_ns[last])
            return t
        # The last segment is only ever acked by FINAL, after the peer committed.
        last = t.count - 1
        top = min(ack.cum, last)
        above = [i for i in ack.received() if i < last]
        if self._regressed(t, ack.cum, above):
            self._restart(t)
            self.regressions += 1
            return None
        newest_depart = -1
        boundary = t.first_seq[top - 1] if top > 0 else -1
        for i in [*range(t.cum, top), *above]:
            if t.sends[i] == 0:
                continue  # never sent: a confused peer, not a reason to skip it
            if not t.acked[i]:
                t.acked[i] = 1
                if i in t.inflight:
                    t.inflight.discard(i)
                    self.n_inflight -= 1
                t.lost.discard(i)
                if t.sends[i] == 1:
                    newest_depart = max(newest_depart, t.depart_ns[i])
            boundary = max(boundary, t.first_seq[i])
        while t.cum < last and t.acked[t.cum]:
            t.cum += 1
        if newest_depart >= 0 and now_ns > newest_depart:
            self.rtt.sample(now_ns - newest_depart)
        # FIFO line: anything whose latest copy left before a received segment's
        # first copy, and is still missing, was lost.
        for i in [i for i in t.inflight if t.last_seq[i] < boundary]:
            t.inflight.discard(i)
            self.n_inflight -= 1
            t.lost.add(i)
        return None

    @staticmethod
    def _regressed(t: OutgoingTransfer, cum: int, above: list[int]) -> bool:
        """True when the peer no longer has segments it acked: it dropped the transfer."""
        if cum < t.cum:
            return True
        reported = set(above)
        end = min(t.count - 1, cum + SPAN)
        return any(t.acked[i] and i not in reported for i in range(cum, end))

    def _restart(self, t: OutgoingTransfer) -> None:
        self.n_inflight -= len(t.inflight)
        t.restart()

    def next_timeout_ns(self) -> int | None:
        """When the oldest segment in flight times out (ns), if any is."""
        entry = self._oldest_live()
        if entry is None:
            return None
        _, t, index = entry
        return t.depart_ns[index] + self.rtt.rto_ns()

    def expire(self, now_ns: int) -> int:
        """Mark timed-out segments lost; returns how many."""
        n = 0
        rto = self.rtt.rto_ns()
        while (entry := self._oldest_live()) is not None:
            _, t, index = entry
            if t.depart_ns[index] + rto > now_ns:
                break
            self._timers.popleft()
            t.inflight.discard(index)
            self.n_inflight -= 1
            t.lost.add(index)
            n += 1
        if n:
            self.rtt.on_timeout()
        return n

    def _oldest_live(self) -> tuple[int, OutgoingTransfer, int] | None:
        while self._timers:
            seq, t, index = self._timers[0]
            if t.last_seq[index] == seq and index in t.inflight and self.active.get(t.transfer) is t:
                return self._timers[0]
            self._timers.popleft()
        return None

    def resume(self, now_ns: int) -> None:
        """The peer is back (same session): restart timers so its ACKs can arrive first."""
        for t in self.active.values():
            for i in t.inflight:
                t.depart_ns[i] = now_ns
        self.rtt.reset_backoff()

    def restart_all(self) -> None:
        """The peer restarted: every transfer starts again from its first segment."""
        for t in self.active.values():
            t.restart()
        self.n_inflight = 0
        self._timers.clear()
        self.rtt.reset_backoff()
