"""Turns at one resource handed out by class-of-service rank: higher first, then first come.

A CLA whose protocol cannot interleave bundles (MTCP's byte stream, one TCPCL
session) still chooses which bundle goes next. :class:`RankedTurns` is that
choice: a sender takes a turn before it writes a bundle and gives it back once
the bundle is written, and the next turn goes to the best-ranked waiter, not to
the one that asked first.
"""

from __future__ import annotations

import asyncio
import heapq


class RankedTurns:
    """One holder at a time; waiters served by rank (higher first), then in order of asking."""

    def __init__(self) -> None:
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._held = False
        self._asked = 0

    @property
    def waiting(self) -> int:
        """Senders waiting for a turn (some may have given up)."""
        return len(self._waiting)

    async def acquire(self, rank: int) -> None:
        """Wait for the turn; the caller must :meth:`release` it."""
        if not self._held and not self._waiting:
            self._held = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asked += 1
        heapq.heappush(self._waiting, (-rank, self._asked, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed the turn as the caller gave up: pass it on
            raise

    def release(self) -> None:
        """Give the turn to the best waiter still waiting, or free it."""
        while self._waiting:
            _, _, fut = heapq.heappop(self._waiting)
            if not fut.done():
                fut.set_result(None)
                return
        self._held = False
