"""Propagation: each unit arrives ``delay`` (+ jitter) after it left the line.

The delay runs from 0 to deep-space light times (Mars: 3 to 22 minutes one
way). Only the units actually in flight are held, one entry each, so memory is
bounded by rate x delay (what the link physically holds), never by the delay
alone.

Jitter draws each unit's delay uniformly in [delay - jitter, delay + jitter]
(at least 0). Without ``reorder`` a unit never overtakes the one before it: it
arrives no earlier than its predecessor (as netem does with a FIFO child).
With ``reorder`` units arrive in the order of their drawn times.
A delay change applies to units that leave the line from then on.
"""

from __future__ import annotations

import heapq
import random
from collections import deque

from hilnet.link.shaper.stage import DropFn
from hilnet.link.shaper.types import DirectionConfig, Unit


class Propagation:
    __slots__ = (
        "_rng",
        "_drop",
        "_never_reorder",
        "delay_ns",
        "jitter_ns",
        "reorder",
        "_fifo",
        "_heap",
        "_seq",
        "_last_ns",
    )

    def __init__(self, rng: random.Random, drop: DropFn, *, never_reorder: bool = False):
        self._rng = rng
        self._drop = drop
        # A byte stream (the TCP relay) cannot be reordered without corrupting it: TCP
        # below the agents already put the bytes in order, so jitter may only delay.
        self._never_reorder = never_reorder
        self.delay_ns = 0
        self.jitter_ns = 0
        self.reorder = False
        self._fifo: deque[tuple[int, Unit]] = deque()  # in order of arrival time
        self._heap: list[tuple[int, int, Unit]] = []  # reordering units: (arrival, seq, unit)
        self._seq = 0
        self._last_ns = 0  # arrival time of the last unit put in the FIFO

    def configure(self, config: DirectionConfig) -> None:
        self.delay_ns = config.delay_ns
        self.jitter_ns = config.jitter_ns
        self.reorder = config.reorder and not self._never_reorder

    def identity(self) -> bool:
        return self.delay_ns == 0 and self.jitter_ns == 0 and not self._fifo and not self._heap

    def accept(self, unit: Unit, now_ns: int) -> None:
        at = now_ns + self.delay_ns
        j = self.jitter_ns
        if j:
            at += self._rng.randint(-j, j)
            if at < now_ns:
                at = now_ns
            if self.reorder:
                heapq.heappush(self._heap, (at, self._seq, unit))
                self._seq += 1
                return
        if at < self._last_ns:
            at = self._last_ns  # never overtake (jitter, or a delay that just shrank)
        self._last_ns = at
        self._fifo.append((at, unit))

    def pop_due(self, now_ns: int) -> list[Unit]:
        out = []
        fifo = self._fifo
        heap = self._heap
        if not heap:
            while fifo and fifo[0][0] <= now_ns:
                out.append(fifo.popleft()[1])
            return out
        while True:
            f = fifo[0][0] if fifo else None
            h = heap[0][0] if heap else None
            if f is not None and f <= now_ns and (h is None or f <= h):
                out.append(fifo.popleft()[1])
            elif h is not None and h <= now_ns:
                out.append(heapq.heappop(heap)[2])
            else:
                return out

    def next_wake_ns(self) -> int | None:
        f = self._fifo[0][0] if self._fifo else None
        h = self._heap[0][0] if self._heap else None
        if f is None:
            return h
        return f if h is None or f <= h else h

    def cut(self, t_ns: int) -> None:
        """The link went down at ``t_ns``: every unit still in flight is lost."""
        for _, unit in self._fifo:
            self._drop(unit, "cut-in-flight", t_ns)
        for _, _, unit in self._heap:
            self._drop(unit, "cut-in-flight", t_ns)
        self._fifo.clear()
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._fifo) + len(self._heap)
