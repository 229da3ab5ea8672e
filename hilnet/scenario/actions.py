"""What a run does, step by step: one frozen action type per kind.

:func:`hilnet.scenario.plan.compile_plan` puts them in ``Plan.actions``,
sorted by scenario time. Each kind is its own class with its own fields
(docs/scenario.md, "What ``hilnet plan`` computes"), so the controller, the
views and the tests read ``action.seq`` or ``action.ber``, never a mapping.
Times are ns: ``at_ns`` scenario time, ``wall_ns`` since the run's start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

# Every kind, in the order they are applied at one instant: downs first, then
# restores, changes and ups, then bursts start, then injections.
KINDS = (
    "link-down",
    "cut",
    "crash",
    "power-cut",
    "burst-end",
    "restore",
    "restart",
    "power-on",
    "link-change",
    "link-up",
    "burst-start",
    "inject",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One scripted step; each kind is a subclass carrying its own fields.

    ``subject`` is a link, node or traffic name, depending on the kind (each
    subclass also names it: ``link``, ``node`` or ``traffic``).
    """

    kind: ClassVar[str] = ""  # one of KINDS
    at_ns: int  # scenario time
    wall_ns: int  # wall time since the run's start: at_ns / scale
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _LinkAction(Action):
    @property
    def link(self) -> str:
        return self.subject


@dataclass(frozen=True, slots=True, kw_only=True)
class _NodeAction(Action):
    @property
    def node(self) -> str:
        return self.subject


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp(_LinkAction):
    """A window opens: scenario ns ``window_start_ns``-``window_end_ns``; both None for a link always up.

    ``direction`` is ``both``, or ``forward`` (a->b) / ``backward`` (b->a) on a
    link whose directions have windows of their own (one-way windows).
    """

    kind: ClassVar[str] = "link-up"
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    direction: str = "both"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDown(_LinkAction):
    """A window closes (scenario ns span), or the link starts down at 0 (both None)."""

    kind: ClassVar[str] = "link-down"
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    direction: str = "both"  # as LinkUp's


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkChange(_LinkAction):
    """``params`` (DirectionParams field -> value) take effect in ``direction`` (both, forward, backward)."""

    kind: ClassVar[str] = "link-change"
    direction: str
    params: Mapping[str, object]  # read-only


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectBundle(Action):
    """Bundle ``seq`` (0-based) of a traffic stream: ``size`` bytes from node ``frm`` to ``to``."""

    kind: ClassVar[str] = "inject"
    seq: int
    frm: str
    to: str
    size: int  # payload bytes
    lifetime_ns: int  # scenario time
    priority: str  # bulk, normal or expedited
    ordinal: int = 0  # 0..254 inside expedited, higher first
    integrity: str | None = None  # BPSec services the source adds (docs/scenario.md)
    confidentiality: str | None = None
    hop_limit: int | None = (
        None  # the traffic's, or the plan's default for its stream (scenario.hops); None: the stack's
    )

    @property
    def traffic(self) -> str:
        return self.subject


@dataclass(frozen=True, slots=True, kw_only=True)
class CutLink(_LinkAction):
    """An unplanned cut of ``for_ns`` scenario ns."""

    kind: ClassVar[str] = "cut"
    for_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreLink(_LinkAction):
    kind: ClassVar[str] = "restore"


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashAgent(_NodeAction):
    """``kill -9`` of a node's agent; it restarts after ``restart_after_ns`` scenario ns (None: never)."""

    kind: ClassVar[str] = "crash"
    restart_after_ns: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartAgent(_NodeAction):
    kind: ClassVar[str] = "restart"


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerOff(_NodeAction):
    """The board playing ``node`` is switched off for ``for_ns`` scenario ns (its agent dies with it)."""

    kind: ClassVar[str] = "power-cut"
    for_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerOn(_NodeAction):
    """The board is switched on again; its agent restarts on its store once the board answers."""

    kind: ClassVar[str] = "power-on"


@dataclass(frozen=True, slots=True, kw_only=True)
class BurstStart(_LinkAction):
    """An error burst: bit error rate ``ber`` for ``for_ns`` scenario ns."""

    kind: ClassVar[str] = "burst-start"
    for_ns: int
    ber: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BurstEnd(_LinkAction):
    kind: ClassVar[str] = "burst-end"
