"""The receiving half of the serial CLA: reassembly, ack pacing, delivery once.

A transfer is keyed by (sender nonce, transfer id). Partial reassembly state
outlives an outage, so the sender resumes where it stopped; memory is bounded
by ``max_partial`` transfers and ``max_partial_bytes``, evicting the least
recently touched (its sender notices from the next ACK and starts it again),
and counts against the agent's memory budget (:mod:`~hilnet.agent.cla.budget`):
a transfer it has no room for is refused "store full", so the sender retries.

Finished transfers are remembered (bounded, newest kept) as pending, committed
or refused, so a segment that comes again after a lost FINAL ack is answered
with the FINAL ack again and never delivered twice.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import Enum

from hilnet.agent.cla.budget import Holding, MemoryBudget
from hilnet.agent.cla.serial_frame import (
    MAX_BITMAP,
    Ack,
    Data,
    Refuse,
    RefuseReason,
    segment_count,
)

TransferKey = tuple[int, int]  # (sender nonce, transfer id)


class Outcome(Enum):
    PENDING = "pending"  # complete, handed to the agent, not committed yet
    COMMITTED = "committed"
    REFUSED = "refused"


@dataclass(slots=True, eq=False)
class Partial:
    key: TransferKey
    total: int  # bytes
    seg_size: int  # bytes
    count: int
    buf: bytearray
    have: bytearray = field(default_factory=bytearray)
    n_have: int = 0
    cum: int = 0  # first missing segment
    highest: int = -1
    unacked: int = 0  # segments taken since the last ACK
    ack_due_ns: int | None = None
    touched_ns: int = 0


@dataclass(slots=True)
class Finished:
    outcome: Outcome
    count: int
    reason: RefuseReason = RefuseReason.STORE_FULL


class Receiver:
    """Reassembles incoming transfers and decides when to acknowledge."""

    def __init__(
        self,
        *,
        max_bundle: int,
        max_partial: int,
        max_partial_bytes: int,
        ack_every: int,
        ack_delay_ns: int,
        remember: int = 4096,
        stats: Counter | None = None,
        budget: MemoryBudget | None = None,
    ):
        self.max_bundle = max_bundle
        self.max_partial = max_partial
        self.max_partial_bytes = max_partial_bytes
        self.ack_every = ack_every
        self.ack_delay_ns = ack_delay_ns
        self.remember = remember
        self.partials: OrderedDict[TransferKey, Partial] = OrderedDict()  # least recently touched first
        self.finished: OrderedDict[TransferKey, Finished] = OrderedDict()
        self.partial_bytes = 0
        self.replies: list[Ack | Refuse] = []  # frames to send now
        self.stats: Counter = stats if stats is not None else Counter()
        self.holding = Holding(budget, peer="serial")  # reassembly buffers in the agent's memory budget

    def _count(self, key: str) -> None:
        self.stats[key] += 1

    # -- DATA ---------------------------------------------------------------

    def on_data(self, d: Data, now_ns: int) -> tuple[TransferKey, bytes] | None:
        """Take one segment; returns (key, bundle) when the bundle just became complete."""
        key = (d.nonce, d.transfer)
        done = self.finished.get(key)
        if done is not None:
            self._count("duplicate_segments")
            if done.outcome is Outcome.COMMITTED:
                self.replies.append(Ack(d.nonce, d.transfer, True, done.count, b""))
            elif done.outcome is Outcome.REFUSED:
                self.replies.append(Refuse(d.nonce, d.transfer, done.reason))
            return None  # PENDING: the FINAL ack follows the commit
        p = self.partials.get(key)
        if p is None:
            if d.total > self.max_bundle:
                self._finish(key, Finished(Outcome.REFUSED, 0, RefuseReason.TOO_LARGE))
                self.replies.append(Refuse(d.nonce, d.transfer, RefuseReason.TOO_LARGE))
                self._count("refused_too_large")
                return None
            p = self._open(key, d, now_ns)
            if p is None:  # the agent's memory budget is full: the sender keeps it and tries later
                self._finish(key, Finished(Outcome.REFUSED, 0, RefuseReason.STORE_FULL))
                self.replies.append(Refuse(d.nonce, d.transfer, RefuseReason.STORE_FULL))
                self._count("refused_memory_budget")
                return None
        elif p.total != d.total or p.seg_size != d.seg_size:
            # The same transfer cannot change shape: the sender is broken.
            self._drop(p)
            self._finish(key, Finished(Outcome.REFUSED, 0, RefuseReason.INVALID))
            self.replies.append(Refuse(d.nonce, d.transfer, RefuseReason.INVALID))
            self._count("refused_inconsistent")
            return None
        self.partials.move_to_end(key)
        p.touched_ns = now_ns
        i = d.index
        if p.have[i]:
            self._count("duplicate_segments")
            p.ack_due_ns = now_ns  # our ACK was probably lost: say it again
            return None
        start = i * p.seg_size
        p.buf[start : start + len(d.payload)] = d.payload
        p.have[i] = 1
        p.n_have += 1
        in_order = i == p.highest + 1
        p.highest = max(p.highest, i)
        while p.cum < p.count and p.have[p.cum]:
            p.cum += 1
        if p.n_have == p.count:
            self._drop(p)
            self._finish(key, Finished(Outcome.PENDING, p.count))
            return key, bytes(p.buf)
        p.unacked += 1
        if not in_order or p.unacked >= self.ack_every:
            p.ack_due_ns = now_ns  # a new hole or a filled one: the sender wants to know now
        elif p.ack_due_ns is None:
            p.ack_due_ns = now_ns + self.ack_delay_ns
        return None

    def _open(self, key: TransferKey, d: Data, now_ns: int) -> Partial | None:
        while self.partials and (
            len(self.partials) >= self.max_partial or self.partial_bytes + d.total > self.max_partial_bytes
        ):
            self._drop(next(iter(self.partials.values())))
            self._count("partials_evicted")
        if not self.holding.grow(d.total):
            return None
        count = segment_count(d.total, d.seg_size)
        p = Partial(key, d.total, d.seg_size, count, bytearray(d.total), bytearray(count), touched_ns=now_ns)
        self.partials[key] = p
        self.partial_bytes += d.total
        return p

    def _drop(self, p: Partial) -> None:
        if self.partials.pop(p.key, None) is not None:
            self.partial_bytes -= p.total
            self.holding.release(p.total)

    def _finish(self, key: TransferKey, f: Finished) -> None:
        self.finished[key] = f
        self.finished.move_to_end(key)
        while len(self.finished) > self.remember:
            self.finished.popitem(last=False)

    # -- the agent's answer -------------------------------------------------

    def commit(self, key: TransferKey) -> None:
        """The agent stored the bundle: send the FINAL ack."""
        f = self.finished.get(key)
        if f is None or f.outcome is not Outcome.PENDING:
            raise KeyError(f"no bundle {key} waits for a commit")
        f.outcome = Outcome.COMMITTED
        self.replies.append(Ack(key[0], key[1], True, f.count, b""))

    def refuse(self, key: TransferKey, reason: RefuseReason = RefuseReason.STORE_FULL) -> None:
        """The agent could not take the bundle: tell the sender to keep it."""
        f = self.finished.get(key)
        if f is None or f.outcome is not Outcome.PENDING:
            raise KeyError(f"no bundle {key} waits for a commit")
        f.outcome = Outcome.REFUSED
        f.reason = reason
        self.replies.append(Refuse(key[0], key[1], reason))

    # -- acks ---------------------------------------------------------------

    def ack_for(self, p: Partial) -> Ack:
        """A non-final ACK: never shows the last segment, which only FINAL acknowledges."""
        last = p.count - 1
        cum = min(p.cum, last)
        end = min(last, cum + 1 + MAX_BITMAP * 8)
        bits = bytearray(MAX_BITMAP)
        top = -1
        for i in range(cum + 1, end):
            if p.have[i]:
                j = i - cum - 1
                bits[j >> 3] |= 0x80 >> (j & 7)
                top = j
        return Ack(p.key[0], p.key[1], False, cum, bytes(bits[: top // 8 + 1]) if top >= 0 else b"")

    def due_acks(self, now_ns: int) -> list[Ack]:
        """ACKs whose time has come."""
        out = []
        for p in self.partials.values():
            if p.ack_due_ns is not None and p.ack_due_ns <= now_ns:
                out.append(self.ack_for(p))
                p.ack_due_ns = None
                p.unacked = 0
        return out

    def next_ack_ns(self) -> int | None:
        due = [p.ack_due_ns for p in self.partials.values() if p.ack_due_ns is not None]
        return min(due) if due else None

    def resync(self, nonce: int, now_ns: int) -> None:
        """The peer is back: ack every partial of its session now, so it resumes exactly."""
        for p in self.partials.values():
            if p.key[0] == nonce:
                p.ack_due_ns = now_ns

    def forget_session(self, keep_nonce: int) -> None:
        """The peer restarted: partial state of its earlier sessions is useless."""
        for p in [p for p in self.partials.values() if p.key[0] != keep_nonce]:
            self._drop(p)
            self._count("partials_dropped_restart")
