"""The one interface every shaper stage has, and the base of the instant ones.

A stage takes a unit at ``now`` (``accept``), hands out the units due at
``now`` (``pop_due``) and says when it next has something to hand out
(``next_wake_ns``). Instant stages (gate, loss, corruption) decide at once;
they also offer ``filter(unit, now) -> Unit | None`` so that the direction can
run them without building a list per unit, which is most of the cost of a
frame on the fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hilnet.link.shaper.types import Unit

# Called with (unit, reason, now_ns) for every unit a stage drops.
DropFn = Callable[[Unit, str, int], None]


class Stage(Protocol):
    def accept(self, unit: Unit, now_ns: int) -> None: ...

    def pop_due(self, now_ns: int) -> list[Unit]: ...

    def next_wake_ns(self) -> int | None: ...


class InstantStage:
    """accept/pop_due/next_wake_ns on top of a subclass's ``filter``."""

    __slots__ = ("_ready", "_ready_ns")

    def __init__(self) -> None:
        self._ready: list[Unit] = []
        self._ready_ns = 0

    def filter(self, unit: Unit, now_ns: int) -> Unit | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def identity(self) -> bool:
        """True when the stage passes every unit unchanged (the direction skips it)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def accept(self, unit: Unit, now_ns: int) -> None:
        out = self.filter(unit, now_ns)
        if out is not None:
            if not self._ready:
                self._ready_ns = now_ns
            self._ready.append(out)

    def pop_due(self, now_ns: int) -> list[Unit]:
        out, self._ready = self._ready, []
        return out

    def next_wake_ns(self) -> int | None:
        return self._ready_ns if self._ready else None
