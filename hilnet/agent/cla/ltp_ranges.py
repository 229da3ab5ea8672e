"""Sets of octet ranges of an LTP block: what a receiver holds, what a sender knows was received.

Ranges are half-open ``[start, end)`` in block octets, kept sorted and merged,
so a set costs memory in proportion to its holes, not its octets.
"""

from __future__ import annotations

import bisect


class Ranges:
    """A set of block octets as sorted, disjoint, non-touching ``[start, end)`` ranges."""

    __slots__ = ("starts", "ends")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def total(self) -> int:
        """Octets in the set."""
        return sum(e - s for s, e in zip(self.starts, self.ends, strict=True))

    def add(self, start: int, end: int) -> int:
        """Add ``[start, end)``; returns how many of its octets were not in the set yet."""
        if end <= start:
            return 0
        i = bisect.bisect_left(self.ends, start)  # first range that ends at or after start
        j = bisect.bisect_right(self.starts, end)  # ranges before j start at or before end
        old = sum(max(0, min(e, end) - max(s, start)) for s, e in zip(self.starts[i:j], self.ends[i:j], strict=True))
        new = end - start - old
        if i < j:
            start, end = min(start, self.starts[i]), max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]
        return new

    def covers(self, start: int, end: int) -> bool:
        """Whether every octet of ``[start, end)`` is in the set."""
        if end <= start:
            return True
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and self.ends[i] >= end

    def within(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The set's ranges clipped to ``[lo, hi)``."""
        i = bisect.bisect_right(self.ends, lo)
        out = []
        for s, e in zip(self.starts[i:], self.ends[i:], strict=True):
            if s >= hi:
                break
            out.append((max(s, lo), min(e, hi)))
        return out

    def gaps(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The ranges of ``[lo, hi)`` not in the set."""
        out, at = [], lo
        for s, e in self.within(lo, hi):
            if s > at:
                out.append((at, s))
            at = e
        if at < hi:
            out.append((at, hi))
        return out
