"""What the loader asks geometry for one link, and what it gets back (plain values, no numpy)."""

from __future__ import annotations

from dataclasses import dataclass

from hilnet.scenario.geometry.positions import LinkGeometry
from hilnet.scenario.model import Window


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """What geometry should compute for one link (see docs/scenario.md, "Positions and orbits")."""

    name: str
    a: str
    b: str
    line_of_sight: bool  # compute the windows; else ``windows`` are the link's own
    light_time: bool  # compute the delay
    step_ns: int
    grazing_m: float = 100_000.0
    windows: tuple[Window, ...] = ()  # hand-written windows when not line_of_sight; () is the whole run


@dataclass(frozen=True, slots=True)
class LinkSolution:
    windows: tuple[Window, ...]  # sorted; () means never up when ``line_of_sight``
    delays: tuple[
        tuple[int, int], ...
    ]  # (at_ns, one-way delay ns) from the first window's start on; () if not light_time
    geometry: LinkGeometry
