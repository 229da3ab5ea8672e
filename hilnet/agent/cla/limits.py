"""What hostile or broken peers may cost one agent, across all its connections (docs/cla.md, "Limits").

One :class:`Resources` per agent, shared by every CLA it runs:

- a **memory budget** for incoming bundles not yet handed to the agent
  (:mod:`~hilnet.agent.cla.budget`: TCPCLv4 transfers, MTCP bundles, serial
  transfers being reassembled); what would pass it evicts a stalled holder or
  is refused (TCPCL: XFER_REFUSE "No Resources"; MTCP: the connection is closed).
- a **connection limit** below the process's descriptor limit
  (``RLIMIT_NOFILE`` minus :data:`FD_HEADROOM` for the store, logs, pipes and
  outgoing connectors): a connection accepted beyond it is closed at once.
- the **timeouts** every connection keeps (:class:`~hilnet.agent.protocol.Limits`,
  which also holds the defaults).

Each refusal is reported through ``on_limit`` as a :class:`LimitHit`, at most
one per limit and CLA per :data:`REPORT_INTERVAL_NS`, carrying how many were
left out meanwhile, so a flood costs a few events a second, not one per try.
Sans-I/O apart from reading ``RLIMIT_NOFILE`` once; times come from the
agent's clock.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hilnet.agent.cla.budget import Holding, MemoryBudget
from hilnet.agent.protocol import Limits
from hilnet.clock import Clock

NS_PER_S = 1_000_000_000
ACCEPT_BACKLOG = 100  # a listener's backlog: asyncio accepts up to this many in one go, before any is admitted
# Descriptors kept out of the connection limit: 64 for the store, logs, pipes, serial ports and
# connectors, and one accept batch for each of the three listeners (TCPCLv4, TCPCLv3, MTCP),
# whose connections hold a descriptor until the admission check closes them.
FD_HEADROOM = 64 + 3 * ACCEPT_BACKLOG
REPORT_INTERVAL_NS = NS_PER_S  # at most one event per limit and CLA per second


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A limit refused or ended something. ``limit``: memory, connections, idle, partial, transfer (LTP: sessions, block)."""

    cla: str
    limit: str
    detail: str
    peer: str | None = None
    suppressed: int = 0  # hits of the same limit and CLA left unreported since the last report


def descriptor_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` of this process (descriptors)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limit(configured: int | None, nofile: int) -> int:
    """Accepted connections allowed with ``nofile`` descriptors: below it by the headroom, at least 1."""
    ceiling = max(1, nofile - FD_HEADROOM)
    return ceiling if configured is None else max(1, min(configured, ceiling))


class Resources:
    """The limits of one agent and what its connections use of them now."""

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Clock | None = None,
        on_limit: Callable[[LimitHit], None] | None = None,
        nofile: int | None = None,
    ):
        self.limits = limits or Limits()
        self.clock = clock
        self.on_limit = on_limit
        self.budget = MemoryBudget(self.limits.memory_bytes, clock, self._evicted)
        self.max_connections = connection_limit(self.limits.max_connections, nofile or descriptor_limit())
        self.connections = 0
        self.hits: dict[str, int] = {}  # limit -> times hit, reported or not
        self._last: dict[tuple[str, str], int] = {}  # (cla, limit) -> when last reported (ns)
        self._left_out: dict[tuple[str, str], int] = {}

    def session_fields(self) -> dict[str, Any]:
        """The fields of a TCPCL ``SessionConfig`` these limits set: budget and timeouts (ns)."""
        lim = self.limits
        return {
            "budget": self.budget,
            "partial_timeout_ns": lim.partial_timeout_ns,
            "transfer_timeout_ns": lim.transfer_timeout_ns,
        }

    def status(self) -> dict[str, Any]:
        """For the agent's ``status`` reply: what is in use now, the peak, and the limits hit."""
        return {
            "memory_bytes": self.budget.used,
            "memory_peak_bytes": self.budget.peak,
            "memory_limit_bytes": self.budget.limit,
            "connections": self.connections,
            "max_connections": self.max_connections,
            "hits": dict(self.hits),
        }

    def holding(self, evict: Callable[[], None] | None = None, peer: str = "", cla: str = "") -> Holding:
        """A new connection's share of the memory budget; ``evict`` closes the connection (see budget.py)."""
        return Holding(self.budget, evict, peer, cla)

    def _evicted(self, holder: Holding, held: int) -> None:
        self.hit(holder.cla, "memory", f"closed a stalled connection holding {held} bytes", holder.peer or None)

    def admit(self, cla: str, peer: str) -> bool:
        """Count one accepted connection; False (reported) if it passes the connection limit."""
        if self.connections >= self.max_connections:
            self.hit(cla, "connections", f"{self.connections} connections open, the limit is {self.max_connections}")
            return False
        self.connections += 1
        return True

    def leave(self) -> None:
        """An admitted connection closed."""
        self.connections = max(0, self.connections - 1)

    def hit(self, cla: str, limit: str, detail: str, peer: str | None = None) -> None:
        """A limit refused or ended something: count it, and report it unless one was reported just now."""
        self.hits[limit] = self.hits.get(limit, 0) + 1
        key = (cla, limit)
        now = self.clock.now_ns() if self.clock is not None else 0
        last = self._last.get(key)
        if last is not None and self.clock is not None and now - last < REPORT_INTERVAL_NS:  # no clock: all of them
            self._left_out[key] = self._left_out.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._left_out.pop(key, 0)
        if self.on_limit is not None:
            self.on_limit(LimitHit(cla, limit, detail, peer, suppressed))
