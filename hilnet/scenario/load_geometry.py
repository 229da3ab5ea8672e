"""A link's ``up: line-of-sight`` and ``delay: light-time``: computed windows and delays as the model's own.

The link reader hands over the keys geometry owns; once every link is read,
:meth:`GeometryBuilder._geometry_links` solves them all at once and writes the
result into each :class:`~hilnet.scenario.model.Link` as windows, a delay and
timed delay changes, exactly as if they had been typed, so the plan, the
emulator's schedule, the contact plan and the reports need nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode

from hilnet.scenario.geometry.positions import Station
from hilnet.scenario.geometry.requests import LinkRequest, LinkSolution
from hilnet.scenario.load_positions import PositionBuilder
from hilnet.scenario.model import Change, ClockSpec, Link
from hilnet.scenario.reader import MappingEntries
from hilnet.units import format_duration

GEOMETRY_KEYS = ("geometry-step", "grazing-altitude")
DEFAULT_STEP_NS = 10_000_000_000  # 10 s of scenario time
DEFAULT_GRAZING_M = 100_000.0  # the line between two spacecraft stays above the densest atmosphere
EXTRA = "pip install 'hilnet[orbits]'"
MIN_STEP_NS = 1_000_000_000  # finer than a second moves a LEO satellite 7 km: nothing a window edge needs
MAX_SAMPLES = 200_000  # instants per run (23 days at 10 s): ~10 MB of positions and velocities per satellite


@dataclass(frozen=True, slots=True)
class _Wanted:
    line_of_sight: bool
    light_time: bool
    step_ns: int
    grazing_m: float
    node: Node  # the `up` or `delay` value that asked, for messages


class GeometryBuilder(PositionBuilder):
    def __init__(self, filename: str):
        super().__init__(filename)
        self.wanted: dict[str, _Wanted] = {}  # link name -> what geometry computes for it

    def _link_geometry(self, m: MappingEntries, what: str, name: str) -> None:
        """Take ``up: line-of-sight``, ``delay: light-time`` and their settings out of link mapping ``m``."""
        los = _is(m, "up", "line-of-sight")
        light = _is(m, "delay", "light-time")
        asked = m["up"][1] if los else m["delay"][1] if light else None
        step, grazing = DEFAULT_STEP_NS, DEFAULT_GRAZING_M
        if "geometry-step" in m:
            step = self._step(m["geometry-step"][1], f"{what} geometry-step") or step
        if "grazing-altitude" in m:
            grazing = self._length(m["grazing-altitude"][1], f"{what} grazing-altitude", 0.0) or grazing
        for key in GEOMETRY_KEYS:
            if key in m and asked is None:
                self.r.error(m[key][0], f"{what} {key} applies to up: line-of-sight or delay: light-time; expected one")
        if "up" in m and isinstance(m["up"][1], ScalarNode) and not los:
            self.r.error(
                m["up"][1],
                f"{what} up is the text {m['up'][1].value!r}; expected a list of windows such as [0m-38m, 47m-85m] "
                "or line-of-sight",
            )
            del m["up"]
        if asked is None:
            return
        for key in [k for k, on in (("up", los), ("delay", light)) if on]:
            del m[key]
        self._owned_by_geometry(m, what, los, light)
        if self.duration is not None and self.duration // step > MAX_SAMPLES:
            where = m["geometry-step"][1] if "geometry-step" in m else asked
            self.r.error(
                where,
                f"{what} geometry-step {format_duration(step)} makes {self.duration // step:,} instants in "
                f"clock.duration; expected at most {MAX_SAMPLES:,} (a longer step)",
            )
            return
        self.wanted[name] = _Wanted(los, light, step, grazing, asked)

    def _owned_by_geometry(self, m: MappingEntries, what: str, los: bool, light: bool) -> None:
        """A direction block may not set what geometry computes for both directions."""
        for key, (knode, vnode) in m.items():
            inner = {k.value for k, _ in vnode.value} if "->" in key and isinstance(vnode, MappingNode) else set()
            for owned, on in (("up", los), ("delay", light)):
                if on and owned in inner:
                    word = "line of sight" if owned == "up" else "light time"
                    self.r.error(
                        knode,
                        f"{what} {key}: {owned} is computed from {word} for both directions; expected no {owned} here",
                    )

    def _step(self, node: Node, what: str) -> int | None:
        """A geometry step of at least a second."""
        step = self._span(node, what, "a step", "10s")
        if step is not None and step < MIN_STEP_NS:
            self.r.error(node, f"{what} {format_duration(step)} is under 1s; expected a step such as 10s")
            return None
        return step

    def _geometry_links(self, links: tuple[Link, ...], clock: ClockSpec | None) -> tuple[Link, ...]:
        """``links`` with computed windows and light-time delays filled in (errors reported)."""
        wanted = {link.name: (link, self.wanted[link.name]) for link in links if link.name in self.wanted}
        if not wanted:
            return links
        requests = self._requests(wanted, clock)
        if requests is None or clock is None or clock.epoch_unix_ns is None or self.r.errors:
            return links  # with errors already, the file is refused anyway: no propagating for nothing
        try:
            from hilnet.scenario.geometry.solve import solve
        except ImportError as e:
            first = next(iter(wanted.values()))[1].node
            self.r.error(
                first,
                f"computing line of sight and light time needs the {(e.name or 'sgp4').split('.')[0]} package, which is not "
                f"installed; expected it installed with: {EXTRA}",
            )
            return links
        positions = {n: self.positions[n] for req in requests for n in (req.a, req.b)}
        solved, failures = solve(requests, positions, clock.epoch_unix_ns, clock.duration_ns)
        for f in failures:
            self.r.error(
                self.position_nodes[f.node],
                f"node {f.node!r}: SGP4 cannot place it from {format_duration(f.at_ns)} of scenario time on "
                f"({f.reason}); expected a TLE that stays in orbit through the run",
            )
        return tuple(_filled(link, solved[link.name]) if link.name in solved else link for link in links)

    def _requests(self, wanted: dict[str, tuple[Link, _Wanted]], clock: ClockSpec | None) -> list[LinkRequest] | None:
        out = []
        for name, (link, w) in wanted.items():
            what = f"link {name!r} {'up: line-of-sight' if w.line_of_sight else 'delay: light-time'}"
            if clock is not None and clock.epoch_unix_ns is None:
                self.r.error(w.node, f"{what} needs clock.epoch, the UTC time of scenario time 0; expected it in clock")
                return None
            missing = [n for n in (link.a, link.b) if n not in self.position_nodes]
            if missing:
                who = (
                    f"node {missing[0]!r} has" if len(missing) == 1 else f"nodes {missing[0]!r} and {missing[1]!r} have"
                )
                self.r.error(
                    w.node,
                    f"{what}: {who} no position; expected a position (orbit, geostationary or station) on both ends",
                )
                continue
            if any(n not in self.positions for n in (link.a, link.b)):
                continue  # a position was given but is wrong, and reported
            if w.line_of_sight and all(isinstance(self.positions[n], Station) for n in (link.a, link.b)):
                self.r.error(w.node, f"{what}: both ends are ground stations; expected a spacecraft at one end")
                continue
            for c in link.changes:
                if w.light_time and "delay_ns" in c.params:
                    self.r.error(
                        w.node,
                        f"{what}: a change at {format_duration(c.at_ns)} sets the delay, which light time sets "
                        "every step; expected changes of other parameters",
                    )
            out.append(
                LinkRequest(
                    name, link.a, link.b, w.line_of_sight, w.light_time, w.step_ns, w.grazing_m, windows=link.windows
                )
            )
        return out


def _is(m: MappingEntries, key: str, word: str) -> bool:
    return key in m and isinstance(m[key][1], ScalarNode) and str(m[key][1].value).strip() == word


def _filled(link: Link, solution: LinkSolution) -> Link:
    """``link`` with the solution's windows and delays, as a hand-written link would hold them."""
    changes = list(link.changes)
    forward, backward = link.forward, link.backward
    if solution.delays:
        base = solution.delays[0][1]
        forward, backward = replace(forward, delay_ns=base), replace(backward, delay_ns=base)
        changes += [Change(at, "both", MappingProxyType({"delay_ns": d})) for at, d in solution.delays[1:]]
        changes.sort(key=lambda c: c.at_ns)
    windows, directed = link.windows, link.directed
    if solution.geometry.line_of_sight:
        windows = solution.windows
        directed = ((), ()) if not windows else None  # never in sight: down both ways all run
    return replace(
        link,
        forward=forward,
        backward=backward,
        windows=windows,
        directed=directed,
        changes=tuple(changes),
        geometry=solution.geometry,
    )
