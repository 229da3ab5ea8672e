"""The gate: a link direction is up or down, as scripted.

Down, a frame or datagram is dropped (reason ``down``): radio physics, not a
buffer. A stream (the TCP relay) cannot lose bytes without breaking the
stream, so there the gate holds them until the link is up again (a stall) and
the engine stops reading (see ``Direction.accepting``).
"""

from __future__ import annotations

from collections import deque

from hilnet.link.shaper.stage import DropFn, InstantStage
from hilnet.link.shaper.types import Unit


class Gate(InstantStage):
    __slots__ = ("up", "stall", "_held", "_drop")

    def __init__(self, up: bool, stall: bool, drop: DropFn):
        super().__init__()
        self.up = up
        self.stall = stall
        self._held: deque[Unit] = deque()
        self._drop = drop

    def identity(self) -> bool:
        return self.up

    def filter(self, unit: Unit, now_ns: int) -> Unit | None:
        if self.up:
            return unit
        if self.stall:
            self._held.append(unit)
        else:
            self._drop(unit, "down", now_ns)
        return None

    def set_up(self, up: bool) -> list[Unit]:
        """Open or close the gate; returns the stalled units an opening releases, in order."""
        self.up = up
        if up and self._held:
            released = list(self._held)
            self._held.clear()
            return released
        return []

    @property
    def held_bytes(self) -> int:
        """Bytes stalled behind a closed gate (stream only)."""
        return sum(len(u.data) for u in self._held)
