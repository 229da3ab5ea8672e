"""Queue and serialiser: a bounded FIFO drained onto the line at its rate.

They are one stage because the queue drains exactly as fast as the
serialiser frees the line; apart, each would need the other's state.

Timing is exact integer arithmetic. A unit of ``b`` wire bits is
``b * 1e9`` units of *work* and the line does ``rate`` of work per ns, so
a departure is ``ns + rem / rate`` with integer ``ns`` and ``0 <= rem < rate``
carried from unit to unit: a long run never drifts, whatever the rate.
A unit is handed on at the first whole ns at or after its exact departure.

``depart = max(arrive, line_free) + bits / rate``: an idle line starts a unit
at once and capacity that went unused is gone (no burst after idle). A rate
change at T takes effect at T, mid-frame included: the rest of the frame on
the wire goes at the new rate, and everything queued behind it is re-timed.

The head of the FIFO is always on the wire (the direction runs stages at their
exact instants, so the head started at max(its arrival, the previous
departure) <= now); the rest is the queue that ``queue_bytes``/``queue_units``
bound, with tail drop. A stream never drops: the limits are only reported
through ``full()`` so that the engine stops reading.
"""

from __future__ import annotations

from collections import deque

from hilnet.link.shaper.stage import DropFn
from hilnet.link.shaper.types import NS_PER_S, DirectionConfig, Medium, Unit, wire_bits


class Transmitter:
    __slots__ = (
        "_medium",
        "_drop",
        "_never_drop",
        "_fifo",
        "_bytes",
        "_busy_ns",
        "_busy_rem",
        "rate",
        "bits_per_byte",
        "queue_bytes",
        "queue_units",
    )

    def __init__(self, medium: Medium, drop: DropFn):
        self._medium = medium
        self._drop = drop
        self._never_drop = medium is Medium.STREAM
        # (depart_ns, depart_rem, unit): exact departure = depart_ns + depart_rem / rate
        self._fifo: deque[tuple[int, int, Unit]] = deque()
        self._bytes = 0  # bytes of every unit in the FIFO, the one on the wire included
        self._busy_ns = 0  # exact time the line is next free: _busy_ns + _busy_rem / rate
        self._busy_rem = 0
        self.rate: int | None = None
        self.bits_per_byte = 10
        self.queue_bytes: int | None = None
        self.queue_units: int | None = None

    # -- configuration -------------------------------------------------------------

    def identity(self) -> bool:
        return self.rate is None and not self._fifo

    def configure(self, config: DirectionConfig, t_ns: int) -> None:
        """Take ``config``'s rate, framing and limits in force from ``t_ns`` on."""
        self.queue_bytes = config.queue_bytes
        self.queue_units = config.queue_units
        rate = config.line_rate_bps()
        if rate == self.rate and config.bits_per_byte == self.bits_per_byte:
            return
        old_rate = self.rate
        self.rate = rate
        self.bits_per_byte = config.bits_per_byte
        self._retime(old_rate, t_ns)

    def _retime(self, old_rate: int | None, t_ns: int) -> None:
        fifo = self._fifo
        self._busy_ns, self._busy_rem = t_ns, 0
        if not fifo:
            return
        units = [u for _, _, u in fifo]
        head_ns, head_rem, head = fifo[0]
        fifo.clear()
        rate = self.rate
        if rate is None:  # unlimited from now: everything left goes at t
            fifo.extend((t_ns, 0, u) for u in units)
            return
        # Work the head still has to do: (its exact departure - t) at the old rate.
        if old_rate is None:
            work = wire_bits(self._medium, len(head.data), self.bits_per_byte) * NS_PER_S
        else:
            work = (head_ns - t_ns) * old_rate + head_rem
        dep_ns = t_ns + work // rate
        dep_rem = work % rate
        fifo.append((dep_ns, dep_rem, head))
        for u in units[1:]:
            work = wire_bits(self._medium, len(u.data), self.bits_per_byte) * NS_PER_S + dep_rem
            dep_ns += work // rate
            dep_rem = work % rate
            fifo.append((dep_ns, dep_rem, u))
        self._busy_ns, self._busy_rem = dep_ns, dep_rem

    # -- the stage interface ---------------------------------------------------------

    def full(self) -> bool:
        """True when the queue behind the unit on the wire is at a limit."""
        fifo = self._fifo
        if not fifo:
            return False
        waiting = len(fifo) - 1
        if self.queue_units is not None and waiting >= self.queue_units:
            return True
        if self.queue_bytes is not None:
            return self._bytes - len(fifo[0][2].data) >= self.queue_bytes
        return False

    def accept(self, unit: Unit, now_ns: int) -> None:
        fifo = self._fifo
        n = len(unit.data)
        if not self._never_drop:
            qb = self.queue_bytes
            if qb is not None and n > qb:
                self._drop(unit, "oversize", now_ns)
                return
            if fifo:  # the line is busy: the unit would wait in the queue
                if self.queue_units is not None and len(fifo) > self.queue_units:
                    self._drop(unit, "queue-full", now_ns)
                    return
                if qb is not None and self._bytes - len(fifo[0][2].data) + n > qb:
                    self._drop(unit, "queue-full", now_ns)
                    return
        rate = self.rate
        if rate is None:  # unlimited (a rate just removed while units were queued)
            fifo.append((now_ns, 0, unit))
            self._bytes += n
            return
        busy_ns = self._busy_ns
        if busy_ns < now_ns or (busy_ns == now_ns and self._busy_rem == 0):
            busy_ns, rem = now_ns, 0  # idle line: start now; unused time is gone
        else:
            rem = self._busy_rem
        work = wire_bits(self._medium, n, self.bits_per_byte) * NS_PER_S + rem
        dep_ns = busy_ns + work // rate
        rem = work % rate
        self._busy_ns = dep_ns
        self._busy_rem = rem
        fifo.append((dep_ns, rem, unit))
        self._bytes += n

    def pop_due(self, now_ns: int) -> list[Unit]:
        fifo = self._fifo
        out = []
        while fifo:
            dep_ns, rem, unit = fifo[0]
            if dep_ns + (rem != 0) > now_ns:
                break
            fifo.popleft()
            self._bytes -= len(unit.data)
            out.append(unit)
        return out

    def next_wake_ns(self) -> int | None:
        if not self._fifo:
            return None
        dep_ns, rem, _ = self._fifo[0]
        return dep_ns + (rem != 0)

    def cut(self, t_ns: int) -> None:
        """The link went down at ``t_ns``: the unit on the wire is lost, and the queue."""
        fifo = self._fifo
        if fifo:
            self._drop(fifo.popleft()[2], "cut-in-flight", t_ns)
            while fifo:
                self._drop(fifo.popleft()[2], "down", t_ns)
        self._bytes = 0
        self._busy_ns, self._busy_rem = t_ns, 0

    def __len__(self) -> int:
        return len(self._fifo)

    @property
    def queued_bytes(self) -> int:
        """Bytes in the FIFO, the unit on the wire included."""
        return self._bytes
