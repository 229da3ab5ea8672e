"""Shared state of the scenario loader's readers: what was declared so far, and cross-references.

The loader is split by section: :mod:`load` (the file, clock, nodes),
:mod:`load_links` (links, windows, changes) and :mod:`load_events` (traffic,
faults, expectations). Each part reads through ``self.r``, a
:class:`~hilnet.scenario.reader.Reader` that collects errors.
"""

from __future__ import annotations

from yaml.nodes import Node

from hilnet.scenario.model import Pacing
from hilnet.scenario.reader import Reader, did_you_mean
from hilnet.units import format_duration, parse_duration


class BuilderBase:
    def __init__(self, filename: str):
        self.r = Reader(filename)
        self.filename = filename
        self.duration: int | None = None  # clock.duration, ns; None when it could not be read
        self.node_names: list[str] = []  # every node declared, even one with a bad eid
        self.link_names: list[str] = []  # every link declared, even one with errors
        self.node_stacks: dict[str, tuple[str, Node]] = {}  # node -> (its stack:, where it is written)
        self.all_links_built = True  # else reachability would blame traffic for a broken link
        self.all_traffic_built = True  # else a delivered count could be blamed for a broken entry
        self.pacing_seen: list[Pacing] = []  # every rate and baud read, where it was written

    def _node_ref(self, node: Node, what: str) -> str | None:
        name = self.r.text(node, what, "a node name")
        if name is None:
            return None
        if name not in self.node_names:
            self.r.error(
                node,
                f"{what} {name!r} is not a node{did_you_mean(name, self.node_names)}; "
                f"expected one of: {', '.join(self.node_names) or '(no nodes)'}",
            )
            return None
        return name

    def _span(self, node: Node, what: str, noun: str, example: str) -> int | None:
        """A duration above 0, in ns; ``noun`` and ``example`` word the messages ("a period", "10m")."""
        value = self.r.unit(node, what, parse_duration, f"{noun} such as {example}")
        if value == 0:
            self.r.error(node, f"{what} is 0; expected {noun} above 0 such as {example}")
            return None
        return value

    def _time(self, node: Node, what: str) -> int | None:
        """A scenario time, checked against clock.duration."""
        t = self.r.unit(node, what, parse_duration, "a scenario time such as 40m")
        if t is not None and self.duration is not None and t > self.duration:
            self.r.error(
                node,
                f"{what} {format_duration(t)} is after clock.duration "
                f"({format_duration(self.duration)}); expected a time within the run",
            )
            return None
        return t
