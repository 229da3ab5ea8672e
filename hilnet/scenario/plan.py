"""Compile a :class:`Scenario` into what a run will do: a timeline, a contact plan, capacities.

Pure: scenario in, :class:`Plan` out. The timeline lists every scripted action
(link up/down/change, injections, faults; one type per kind, in
:mod:`hilnet.scenario.actions`) in scenario time and in wall time
(scenario / ``clock.scale``). The contact plan has one one-way
:class:`~hilnet.scenario.contact.Contact` per link direction and stretch of
constant parameters inside a window; faults are unplanned, so they are not in it.

Timebases. ``Plan.contacts`` is in *scenario* time throughout so that a router
running on scenario time can use it as is: start/end are scenario ns, ``owlt_ns``
is the physical delay times the scale, and ``rate`` is bytes per scenario second
(wall goodput / scale). ``Plan.wall_contacts`` is the same plan in wall time
(physical rate and delay), which is what ION or any agent on a plain clock sees.

Capacity: a window lasts ``length / scale`` wall seconds and carries the
direction's goodput (see :mod:`hilnet.scenario.overhead`) for that long. Traffic
is routed along the path with fewest hops (then least delay) and the plan warns
when it cannot fit, when one bundle cannot fit in any window of a hop, or when a
window is shorter than a few round trips.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from hilnet.scenario.actions import (
    KINDS,
    Action,
    BurstEnd,
    BurstStart,
    CrashAgent,
    CutLink,
    InjectBundle,
    LinkChange,
    LinkDown,
    LinkUp,
    PowerOff,
    PowerOn,
    RestartAgent,
    RestoreLink,
)
from hilnet.scenario.contact import Contact
from hilnet.scenario.model import Crash, Cut, DirectionParams, Fault, Link, PowerCut, Scenario, Window
from hilnet.scenario.overhead import bundle_bytes, goodput_bytes_per_s
from hilnet.units import format_duration, format_size, scenario_to_wall_ns, wall_to_scenario_ns

NS_PER_S = 1_000_000_000
FEW_ROUND_TRIPS = 3  # TCP handshake + TCPCL contact header + SESS_INIT before the first byte of data

# At one instant: take things down first, then change and bring up, then inject into the new state.
_ORDER = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one contact (one direction, one stretch of a window) can carry."""

    link: str
    frm: str
    to: str
    start_ns: int  # scenario time
    end_ns: int
    wall_ns: int  # how long it lasts in wall time
    goodput: float  # bundle bytes per wall second, after framing overhead
    capacity_bytes: int  # goodput x wall duration


@dataclass(frozen=True, slots=True)
class Load:
    """Offered traffic on one link direction against what its windows carry."""

    link: str
    frm: str
    to: str
    bundles: int
    offered_bytes: int  # bundle bytes (payload + BPv7/CLA overhead) routed this way
    capacity_bytes: int  # sum of the direction's contacts from the first injection on


@dataclass(frozen=True, slots=True)
class Route:
    traffic: str
    path: tuple[str, ...]  # node names, source first
    links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    scale: float
    duration_ns: int
    actions: tuple[Action, ...]  # sorted by scenario time
    contacts: tuple[Contact, ...]  # scenario timebase (see module docstring)
    wall_contacts: tuple[Contact, ...]  # wall timebase, same order as ``contacts``
    capacities: tuple[Capacity, ...]  # same order as ``contacts``
    loads: tuple[Load, ...]
    routes: tuple[Route, ...]
    warnings: tuple[str, ...]


def compile_plan(scenario: Scenario) -> Plan:
    """Compile ``scenario`` into its timeline, contact plan, capacities and warnings."""
    scale = scenario.clock.scale
    duration = scenario.clock.duration_ns
    warnings: list[str] = []
    actions = _actions(scenario)
    contacts: list[Contact] = []
    wall_contacts: list[Contact] = []
    capacities: list[Capacity] = []
    for link in scenario.links:
        for window in _merged(link.windows) or (Window(0, duration),):
            _check_round_trips(link, window, scale, warnings)
            for start, end, fwd, bwd in _segments(link, window):
                for frm, to, params in ((link.a, link.b, fwd), (link.b, link.a, bwd)):
                    goodput = goodput_bytes_per_s(link.medium, params)
                    wall = scenario_to_wall_ns(end - start, scale)
                    capacities.append(
                        Capacity(link.name, frm, to, start, end, wall, goodput, int(goodput * wall // NS_PER_S))
                    )
                    contacts.append(
                        Contact(
                            frm,
                            to,
                            start,
                            end,
                            rate=max(1, int(goodput / scale)),
                            owlt_ns=wall_to_scenario_ns(params.delay_ns, scale),
                        )
                    )
                    wall_contacts.append(
                        Contact(
                            frm,
                            to,
                            scenario_to_wall_ns(start, scale),
                            scenario_to_wall_ns(end, scale),
                            rate=max(1, int(goodput)),
                            owlt_ns=params.delay_ns,
                        )
                    )
    routes = _routes(scenario, warnings)
    loads = _loads(scenario, routes, capacities, warnings)
    if scenario.expect.within_ns is not None and scenario.expect.within_ns > duration:
        warnings.append(
            f"expect within {format_duration(scenario.expect.within_ns)} is longer than "
            f"clock.duration {format_duration(duration)}: the run ends first"
        )
    return Plan(
        name=scenario.name,
        scale=scale,
        duration_ns=duration,
        actions=actions,
        contacts=tuple(contacts),
        wall_contacts=tuple(wall_contacts),
        capacities=tuple(capacities),
        loads=tuple(loads),
        routes=tuple(routes),
        warnings=tuple(warnings),
    )


# -- timeline --------------------------------------------------------------------


def _merged(windows: tuple[Window, ...]) -> tuple[Window, ...]:
    """Windows with touching ones joined: 0m-38m and 38m-85m are one stretch of up."""
    out: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start_ns):
        if out and w.start_ns <= out[-1].end_ns:
            out[-1] = Window(out[-1].start_ns, max(out[-1].end_ns, w.end_ns))
        else:
            out.append(w)
    return tuple(out)


def _actions(scenario: Scenario) -> tuple[Action, ...]:
    scale = scenario.clock.scale

    def wall(at: int) -> int:
        return scenario_to_wall_ns(at, scale)

    out: list[Action] = []
    for link in scenario.links:
        out += _link_actions(link, wall)
    for t in scenario.traffic:
        for seq, at in enumerate(t.times_ns()):
            out.append(
                InjectBundle(
                    at_ns=at,
                    wall_ns=wall(at),
                    subject=t.name,
                    seq=seq,
                    frm=t.frm,
                    to=t.to,
                    size=t.size,
                    lifetime_ns=t.lifetime_ns,
                    priority=t.priority,
                )
            )
    for f in scenario.faults:
        out += _fault_actions(f, scenario.clock.duration_ns, wall)
    out.sort(key=lambda a: (a.at_ns, _ORDER[a.kind], a.subject, a.seq if isinstance(a, InjectBundle) else 0))
    return tuple(out)


def _link_actions(link: Link, wall: Callable[[int], int]) -> list[Action]:
    name = link.name
    out: list[Action] = []
    windows = _merged(link.windows)
    if not windows:
        out.append(LinkUp(at_ns=0, wall_ns=wall(0), subject=name))
    elif windows[0].start_ns > 0:
        out.append(LinkDown(at_ns=0, wall_ns=wall(0), subject=name))
    for w in windows:
        span = {"window_start_ns": w.start_ns, "window_end_ns": w.end_ns}
        out.append(LinkUp(at_ns=w.start_ns, wall_ns=wall(w.start_ns), subject=name, **span))
        out.append(LinkDown(at_ns=w.end_ns, wall_ns=wall(w.end_ns), subject=name, **span))
    for c in link.changes:
        params = MappingProxyType(dict(c.params))
        out.append(LinkChange(at_ns=c.at_ns, wall_ns=wall(c.at_ns), subject=name, direction=c.direction, params=params))
    return out


def _fault_actions(f: Fault, duration_ns: int, wall: Callable[[int], int]) -> list[Action]:
    """The fault's start, and its end when that falls within the run."""
    at = f.at_ns
    if isinstance(f, Crash):
        crash = CrashAgent(at_ns=at, wall_ns=wall(at), subject=f.node, restart_after_ns=f.restart_after_ns)
        if f.restart_after_ns is None or at + f.restart_after_ns > duration_ns:
            return [crash]
        end = at + f.restart_after_ns
        return [crash, RestartAgent(at_ns=end, wall_ns=wall(end), subject=f.node)]
    end = at + f.for_ns
    if isinstance(f, PowerCut):
        off = PowerOff(at_ns=at, wall_ns=wall(at), subject=f.node, for_ns=f.for_ns)
        return [off, PowerOn(at_ns=end, wall_ns=wall(end), subject=f.node)] if end <= duration_ns else [off]
    if isinstance(f, Cut):
        start: Action = CutLink(at_ns=at, wall_ns=wall(at), subject=f.link, for_ns=f.for_ns)
        stop: Action = RestoreLink(at_ns=end, wall_ns=wall(end), subject=f.link)
    else:
        start = BurstStart(at_ns=at, wall_ns=wall(at), subject=f.link, for_ns=f.for_ns, ber=f.ber)
        stop = BurstEnd(at_ns=end, wall_ns=wall(end), subject=f.link)
    return [start, stop] if end <= duration_ns else [start]


def _apply(params: DirectionParams, changes: Mapping[str, object]) -> DirectionParams:
    fields: dict[str, Any] = dict(changes)  # the loader checked each value against its field
    return replace(params, **fields)


def _segments(link: Link, window: Window) -> list[tuple[int, int, DirectionParams, DirectionParams]]:
    """Stretches of ``window`` with constant parameters: (start, end, forward, backward)."""
    fwd, bwd = link.forward, link.backward
    for c in link.changes:
        if c.at_ns <= window.start_ns:
            if c.direction in ("both", "forward"):
                fwd = _apply(fwd, c.params)
            if c.direction in ("both", "backward"):
                bwd = _apply(bwd, c.params)
    out = []
    start = window.start_ns
    for c in link.changes:
        if not window.start_ns < c.at_ns < window.end_ns:
            continue
        if c.at_ns > start:
            out.append((start, c.at_ns, fwd, bwd))
            start = c.at_ns
        if c.direction in ("both", "forward"):
            fwd = _apply(fwd, c.params)
        if c.direction in ("both", "backward"):
            bwd = _apply(bwd, c.params)
    out.append((start, window.end_ns, fwd, bwd))
    return out


def _check_round_trips(link: Link, window: Window, scale: float, warnings: list[str]) -> None:
    rtt = link.forward.delay_ns + link.forward.jitter_ns + link.backward.delay_ns + link.backward.jitter_ns
    wall = scenario_to_wall_ns(window.length_ns, scale)
    if rtt and wall < FEW_ROUND_TRIPS * rtt:
        warnings.append(
            f"link {link.name} window {format_duration(window.start_ns)}-{format_duration(window.end_ns)} "
            f"lasts {format_duration(wall)} of wall time at scale {scale:g}, less than "
            f"{FEW_ROUND_TRIPS} round trips ({format_duration(FEW_ROUND_TRIPS * rtt)}): a session may "
            "not even open in it"
        )


# -- routing and load --------------------------------------------------------------


def _routes(scenario: Scenario, warnings: list[str]) -> list[Route]:
    """Fewest hops, then least delay, then names: deterministic and what a static route would pick."""
    adjacency: dict[str, list[tuple[str, Link]]] = {}
    for link in scenario.links:
        adjacency.setdefault(link.a, []).append((link.b, link))
        adjacency.setdefault(link.b, []).append((link.a, link))
    routes = []
    for t in scenario.traffic:
        best: dict[str, tuple[int, int]] = {t.frm: (0, 0)}
        heap: list[tuple[int, int, tuple[str, ...], tuple[str, ...]]] = [(0, 0, (t.frm,), ())]
        found = None
        while heap:
            hops, delay, path, links = heapq.heappop(heap)
            node = path[-1]
            if node == t.to:
                found = Route(t.name, path, links)
                break
            if best.get(node, (hops, delay)) < (hops, delay):
                continue
            for nxt, link in sorted(adjacency.get(node, ()), key=lambda e: (e[0], e[1].name)):
                cost = (hops + 1, delay + link.direction(node).delay_ns)
                if nxt not in best or cost < best[nxt]:
                    best[nxt] = cost
                    heapq.heappush(heap, (*cost, path + (nxt,), links + (link.name,)))
        if found is None:  # the loader refuses this; a hand-built Scenario may not
            warnings.append(f"traffic {t.name}: no path from {t.frm} to {t.to}")
        else:
            routes.append(found)
    return routes


def _loads(scenario: Scenario, routes: list[Route], capacities: list[Capacity], warnings: list[str]) -> list[Load]:
    traffic = {t.name: t for t in scenario.traffic}
    offered: dict[tuple[str, str, str], list[int]] = {}  # (link, frm, to) -> [bundles, bytes, first injection]
    for route in routes:
        t = traffic[route.traffic]
        for frm, to, link_name in zip(route.path, route.path[1:], route.links):
            link = scenario.link(link_name)
            per_bundle = bundle_bytes(link.medium, t.size)
            entry = offered.setdefault((link_name, frm, to), [0, 0, t.start_ns])
            entry[0] += t.count
            entry[1] += per_bundle * t.count
            entry[2] = min(entry[2], t.start_ns)
            hop = [c for c in capacities if (c.link, c.frm, c.to) == (link_name, frm, to)]
            largest = max((c.capacity_bytes for c in hop), default=0)
            if per_bundle > largest:
                warnings.append(
                    f"traffic {t.name}: a {format_size(t.size)} bundle needs {format_size(per_bundle)} "
                    f"on {link_name} {frm}->{to}, but its largest window carries "
                    f"{format_size(largest)} at scale {scenario.clock.scale:g}: without "
                    "fragmentation it never crosses"
                )
    loads = []
    for (link_name, frm, to), (bundles, nbytes, first) in offered.items():
        cap = sum(
            c.capacity_bytes * max(0, c.end_ns - max(c.start_ns, first)) // max(1, c.end_ns - c.start_ns)
            for c in capacities
            if (c.link, c.frm, c.to) == (link_name, frm, to)
        )
        loads.append(Load(link_name, frm, to, bundles, nbytes, cap))
        if nbytes > cap:
            warnings.append(
                f"link {link_name} {frm}->{to}: traffic offers {format_size(nbytes)} in {bundles} "
                f"bundles but its windows carry {format_size(cap)} from the first injection at "
                f"{format_duration(first)} (scale {scenario.clock.scale:g}): it cannot all fit"
            )
    return loads
