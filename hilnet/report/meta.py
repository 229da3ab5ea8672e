"""Facts about one run that are not verdicts: where, which seed, which backend, how long.

``RunMeta.from_events`` reads them from the log itself (the ``run-start``
record and the last ``wall_ns``), so ``hilnet report`` rebuilds the same
reports from a run folder as ``hilnet run`` wrote at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
        )
