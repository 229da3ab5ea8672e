"""How virtual nodes' agents are spread over processes: one process each, or many per agent host.

An agent process costs about 40 MB and a Python start; an agent hosted with
others in one ``hilnet agent --host`` process costs under 1 MB (mostly its
SQLite store) and no start. Measured on a 2-core host (benchmarks/scale.py,
both ways in one run): 10 nodes build in 2.5 s and 450 MB as processes, 1.2 s
and 90 MB hosted; 50 nodes in 30 s and 2.1 GB against 1.3 s and 120 MB. One
process per node keeps the strongest isolation (a crash is a real ``kill
-9``, as on a bench), so it stays the choice while it is cheap; from
:data:`HOST_FROM` nodes, where it passes about 10 s and 1 GB, the agents on
the loopback backend are hosted, :data:`NODES_PER_HOST` to a process. The netns backend keeps one
process per namespace (an agent lives in its node's namespace), and a bench
runs its agents on the boards.

``--agents auto|process|hosted`` (``hilnet run``) overrides the choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hilnet.errors import InputError

HOST_FROM = 20  # nodes: where a process each passes ~10 s of build and ~1 GB (see above)
NODES_PER_HOST = 250  # a few hosts share the cores; each loop stays responsive with this many agents
MODES = ("auto", "process", "hosted")


@dataclass(frozen=True)
class Placement:
    """Where each node's agent runs: ``hosts`` maps a host process name to its nodes (empty: a process each)."""

    hosts: dict[str, tuple[str, ...]]
    why: str

    @property
    def hosted(self) -> bool:
        return bool(self.hosts)

    def describe(self, nodes: int) -> str:
        """One line for the console and the run's record."""
        if not self.hosts:
            return f"agents: one process per node ({self.why})"
        return f"agents: {nodes} nodes hosted in {len(self.hosts)} processes ({self.why})"


def place_agents(backend: str, nodes: Sequence[str], mode: str = "auto") -> Placement:
    """Where the agents of ``nodes`` run on ``backend`` under ``mode`` (see the module docstring)."""
    if mode not in MODES:
        raise InputError(f"--agents {mode}: expected one of {', '.join(MODES)}")
    if backend != "loopback":
        if mode == "hosted":
            raise InputError(f"--agents hosted: only the loopback backend hosts agents, this run is on {backend}")
        return Placement({}, f"{backend}: an agent process per node")
    if mode == "process":
        return Placement({}, "--agents process")
    if mode == "auto" and len(nodes) < HOST_FROM:
        return Placement({}, f"fewer than {HOST_FROM} nodes")
    count = max(1, math.ceil(len(nodes) / NODES_PER_HOST))
    size = math.ceil(len(nodes) / count)
    hosts = {f"host-{i + 1}": tuple(nodes[i * size : (i + 1) * size]) for i in range(count)}
    why = "--agents hosted" if mode == "hosted" else f"{HOST_FROM} nodes or more on loopback"
    return Placement(hosts, f"{why}; up to {size} per process")
