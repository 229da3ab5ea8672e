"""Facts about one run that are not verdicts: where, which seed, which backend, how long.

``RunMeta.from_events`` reads them from the log itself (the ``run-start``
record and the last ``wall_ns``), so ``hilnet report`` rebuilds the same
reports from a run folder as ``hilnet run`` wrote at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hilnet.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class RunMeta:
    run_dir: str  # the run folder as the user named it (relative paths stay relative)
    scenario_name: str
    seed: int | None
    backend: str | None
    scale: float  # scenario seconds per wall second
    duration_ns: int  # scenario time the run was meant to last
    wall_duration_ns: int  # wall time from the run's start to its last record
    stacks: Mapping[str, str] = field(default_factory=dict)  # node -> the DTN stack that played it (docs/stacks.md)

    @classmethod
    def from_events(cls, run_dir: str | os.PathLike[str], scenario: Scenario, events: Iterable[Mapping]) -> RunMeta:
        """Meta of a run from its log; falls back to the scenario where ``run-start`` is missing."""
        start: Mapping = {}
        wall = 0
        for e in events:
            if e.get("src") == "controller" and e.get("event") == "run-start" and not start:
                start = e
            w = e.get("wall_ns")
            if isinstance(w, int) and not isinstance(w, bool):
                wall = max(wall, w)
        seed = start.get("seed", scenario.seed)
        scale = start.get("scale", scenario.clock.scale)
        duration = start.get("duration_ns", scenario.clock.duration_ns)
        backend = start.get("backend")
        return cls(
            run_dir=os.fspath(run_dir),
            scenario_name=str(start.get("name", scenario.name)),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            backend=backend if isinstance(backend, str) else None,
            scale=float(scale)
            if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0
            else scenario.clock.scale,
            duration_ns=duration
            if isinstance(duration, int) and not isinstance(duration, bool)
            else scenario.clock.duration_ns,
            wall_duration_ns=wall,
            stacks=_stacks(start, scenario),
        )

    def stacks_line(self) -> str:
        """Which stack played which node: ``ion on iss, ground; hilnet on tdrs`` (stacks in node order)."""
        by_stack: dict[str, list[str]] = {}
        for node, stack in self.stacks.items():
            by_stack.setdefault(stack, []).append(node)
        return "; ".join(f"{stack} on {_some(nodes)}" for stack, nodes in by_stack.items())


def _some(nodes: list[str], most: int = 8) -> str:
    """The nodes by name, or for a large run their count and the first and last few."""
    if len(nodes) <= most:
        return ", ".join(nodes)
    return f"{len(nodes)} nodes ({', '.join(nodes[:3])}, ..., {', '.join(nodes[-2:])})"


def _stacks(start: Mapping, scenario: Scenario) -> dict[str, str]:
    """node -> stack from ``run-start`` (a run recorded before stacks were named: the scenario's)."""
    rec = start.get("stacks")
    if isinstance(rec, Mapping):
        return {str(n): str(s.get("stack", "?")) for n, s in rec.items() if isinstance(s, Mapping)}
    return {n.name: n.stack for n in scenario.nodes}
