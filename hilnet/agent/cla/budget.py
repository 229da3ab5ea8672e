"""The memory budget: bytes of incoming bundles that all connections of one agent may hold together.

A connection takes its share through a :class:`Holding` as octets arrive (not
as lengths are declared) and gives it back once the bundle is handed to the
agent, refused or dropped. Two rules keep peers whose bundles flow going while
others start bundles and stall:

- The last eighth of the budget is kept for *small* bundles (a holding of at
  most :data:`SMALL` bytes): a large transfer is refused once the budget is
  seven-eighths full, so a few stalled large transfers cannot take everything.
- When a request still does not fit, the budget evicts a *stalled* holder,
  the one whose bundle made no progress for the longest time (its connection
  is closed and its share returned), and the request gets its bytes. A small
  request may evict a holder stalled for :data:`STALL_GRACE_NS`, a large one
  only a holder stalled ten times as long, so large stalled transfers do not
  keep evicting each other. A holder making progress is never evicted; when
  every holder is, the request is refused.

Sans-I/O: time comes from the agent's clock; eviction is a callback the
connection's driver gives (it closes the connection).
"""

from __future__ import annotations

from collections.abc import Callable

from hilnet.clock import Clock

STALL_GRACE_NS = 1_000_000_000  # a holder that grew within this is making progress: never evicted
SMALL = 1 << 20  # bytes: a holding up to this may use the budget's reserved last eighth


class MemoryBudget:
    """Bytes of incoming bundles held across all connections; never more than ``limit``.

    ``on_evict(holder, needed)`` hears of each eviction (for the agent's ``limit`` event).
    """

    __slots__ = ("limit", "used", "peak", "clock", "holders", "on_evict")

    def __init__(
        self,
        limit: int,
        clock: Clock | None = None,
        on_evict: Callable[[Holding, int], None] | None = None,
    ):
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.clock = clock
        self.holders: set[Holding] = set()  # holdings with bytes held
        self.on_evict = on_evict

    def _now(self) -> int:
        return self.clock.now_ns() if self.clock is not None else 0

    def take(self, n: int, for_holder: Holding | None = None) -> bool:
        """Reserve ``n`` bytes, evicting stalled holders if need be; False (nothing reserved) if it cannot."""
        small = (for_holder.held if for_holder is not None else 0) + n <= min(SMALL, self.limit // 8)
        ceiling = self.limit if small else self.limit - self.limit // 8
        while self.used + n > ceiling:
            if not self._evict_one(for_holder, STALL_GRACE_NS if small else 10 * STALL_GRACE_NS):
                return False
        self.used += n
        self.peak = max(self.peak, self.used)
        return True

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)

    def _evict_one(self, for_holder: Holding | None, grace_ns: int) -> bool:
        now = self._now()
        stalled = [
            h
            for h in self.holders
            if h is not for_holder and h.evict is not None and h.held and now - h.last_grow_ns >= grace_ns
        ]
        if not stalled:
            return False
        victim = min(stalled, key=lambda h: h.last_grow_ns)
        held, evict = victim.held, victim.evict
        victim.release()
        victim.evict = None  # once
        if self.on_evict is not None:
            self.on_evict(victim, held)
        if evict is not None:
            evict()
        return True


class Holding:
    """One connection's share of a :class:`MemoryBudget` (bytes), given back whole by :meth:`release`.

    ``evict``: how the budget closes this connection to take its share back
    (None: it is never evicted). ``peer`` and ``cla`` name it in events.
    """

    __slots__ = ("budget", "held", "last_grow_ns", "evict", "peer", "cla")

    def __init__(
        self, budget: MemoryBudget | None, evict: Callable[[], None] | None = None, peer: str = "", cla: str = ""
    ):
        self.budget = budget
        self.held = 0
        self.last_grow_ns = 0
        self.evict = evict
        self.peer = peer
        self.cla = cla

    def grow(self, n: int) -> bool:
        """Hold ``n`` more bytes; False if the budget has no room for them, even after evictions."""
        budget = self.budget
        if budget is not None:
            if not budget.take(n, self):
                return False
            self.last_grow_ns = budget._now()
            if n:
                budget.holders.add(self)
        self.held += n
        return True

    def release(self, n: int | None = None) -> None:
        """Give back ``n`` bytes (None: all)."""
        n = self.held if n is None else min(n, self.held)
        self.held -= n
        if self.budget is not None:
            self.budget.give(n)
            if not self.held:
                self.budget.holders.discard(self)
