"""Compile a :class:`Scenario` into what a run will do: a timeline, a contact plan, capacities.

Pure: scenario in, :class:`Plan` out. The timeline lists every scripted action
(link up/down/change, injections, faults; one type per kind, in
:mod:`hilnet.scenario.actions`) in scenario time and in wall time
(scenario / ``clock.scale``). The contact plan has one one-way
:class:`~hilnet.scenario.contact.Contact` per link direction and stretch of
constant parameters inside one of that direction's windows (a link with one-way
windows has its own per direction); faults are unplanned, so they are not in it.

Timebases. ``Plan.contacts`` is in *scenario* time throughout so that a router
running on scenario time can use it as is: start/end are scenario ns, ``owlt_ns``
is the wall delay times the scale, and ``rate`` is bytes per scenario second
(wall goodput / scale). ``Plan.wall_contacts`` is the same plan in wall time
(rate and delay as the wall clock runs them: physical under ``compress:
schedule``, compressed under ``compress: all``, see :mod:`hilnet.scenario.wall`),
which is what ION or any agent on a plain clock sees.

Capacity: a window lasts ``length / scale`` wall seconds and carries the
direction's goodput (see :mod:`hilnet.scenario.overhead`) for that long. Traffic
is routed along the path with fewest hops (then least delay) and the plan warns
when it cannot fit, when one bundle cannot fit in any window of a hop, or when a
window is shorter than a few round trips.

Classes of service: as ION's CGR books volume, a class may use what the
classes above it leave. Each load says, per class, what it offers and what
capacity is left for it, and the plan warns for every class that cannot fit.
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
from hilnet.scenario.geometry.positions import LinkGeometry
from hilnet.scenario.geometry.staleness import tle_age_warnings
from hilnet.scenario.hops import link_graph, stream_hop_limit
from hilnet.scenario.model import (
    Crash,
    Cut,
    DirectionParams,
    Fault,
    Link,
    OneWay,
    PowerCut,
    Scenario,
    Window,
    merged_windows,
)
from hilnet.scenario.offered import Capacity, Load, Route, offered_loads
from hilnet.scenario.overhead import goodput_bytes_per_s
from hilnet.scenario.wall import WallRow, in_wall_terms, wall_rows
from hilnet.units import format_duration, scenario_to_wall_ns, wall_to_scenario_ns

NS_PER_S = 1_000_000_000
FEW_ROUND_TRIPS = 3  # TCP handshake + TCPCL contact header + SESS_INIT before the first byte of data

# At one instant: take things down first, then change and bring up, then inject into the new state.
_ORDER = {k: i for i, k in enumerate(KINDS)}


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
    geometry: tuple[tuple[str, LinkGeometry], ...] = ()  # (link, passes) of links whose windows or delay are computed
    epoch_unix_ns: int | None = None  # clock.epoch, for UTC times beside scenario ones
    compress: str = "schedule"  # clock.compress
    wall_links: tuple[WallRow, ...] = ()  # each link direction's physics as written and on the wall clock


def compile_plan(scenario: Scenario) -> Plan:
    """Compile ``scenario`` into its timeline, contact plan, capacities and warnings.

    The timeline shows the file's values; contacts, capacities and round trips are
    in wall terms (:func:`~hilnet.scenario.wall.in_wall_terms`).
    """
    rows = wall_rows(scenario)
    written = scenario
    scenario = in_wall_terms(scenario)
    scale = scenario.clock.scale
    duration = scenario.clock.duration_ns
    warnings: list[str] = tle_age_warnings(scenario)
    actions = _actions(written)
    contacts: list[Contact] = []
    wall_contacts: list[Contact] = []
    capacities: list[Capacity] = []
    for link in scenario.links:
        for window in merged_windows(link.windows) or (Window(0, duration),):
            _check_round_trips(link, window, scale, warnings)
        for contact, wall_contact, cap in _link_contacts(link, scale, duration):
            contacts.append(contact)
            wall_contacts.append(wall_contact)
            capacities.append(cap)
    routes = _routes(scenario, warnings)
    loads = offered_loads(scenario, routes, capacities, warnings)
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
        geometry=tuple((link.name, link.geometry) for link in scenario.links if link.geometry is not None),
        epoch_unix_ns=scenario.clock.epoch_unix_ns,
        compress=scenario.clock.compress,
        wall_links=rows,
    )


def _link_contacts(link: Link, scale: float, duration: int) -> list[tuple[Contact, Contact, Capacity]]:
    """(scenario-time contact, wall-time contact, capacity) of each direction's windows, in time order.

    At one instant a->b comes before b->a, so a link's contacts read as its windows do.
    """
    found = []
    for order, (direction, frm, to) in enumerate(_ways(link)):
        spans = link.windows_of(direction)
        for window in merged_windows(spans) if spans is not None else (Window(0, duration),):
            segments = _segments(link, window, direction)
            if link.geometry is not None and link.geometry.light_time:
                segments = _light_time_joined(segments)
            for start, end, params in segments:
                goodput = goodput_bytes_per_s(link.medium, params)
                wall = scenario_to_wall_ns(end - start, scale)
                cap = Capacity(link.name, frm, to, start, end, wall, goodput, int(goodput * wall // NS_PER_S))
                contact = Contact(
                    frm,
                    to,
                    start,
                    end,
                    rate=max(1, int(goodput / scale)),
                    owlt_ns=wall_to_scenario_ns(params.delay_ns, scale),
                )
                wall_contact = Contact(
                    frm,
                    to,
                    scenario_to_wall_ns(start, scale),
                    scenario_to_wall_ns(end, scale),
                    rate=max(1, int(goodput)),
                    owlt_ns=params.delay_ns,
                )
                found.append(((start, order), (contact, wall_contact, cap)))
    return [item for _, item in sorted(found, key=lambda f: f[0])]


# -- timeline --------------------------------------------------------------------


def _actions(scenario: Scenario) -> tuple[Action, ...]:
    scale = scenario.clock.scale

    def wall(at: int) -> int:
        return scenario_to_wall_ns(at, scale)

    out: list[Action] = []
    for link in scenario.links:
        out += _link_actions(link, wall)
    graph = link_graph(scenario.links)
    for t in scenario.traffic:
        hop_limit = stream_hop_limit(graph, t)
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
                    ordinal=t.ordinal,
                    integrity=t.integrity,
                    confidentiality=t.confidentiality,
                    hop_limit=hop_limit,
                )
            )
    for f in scenario.faults:
        out += _fault_actions(f, scenario.clock.duration_ns, wall)
    out.sort(key=lambda a: (a.at_ns, _ORDER[a.kind], a.subject, a.seq if isinstance(a, InjectBundle) else 0))
    return tuple(out)


def _ways(link: Link) -> tuple[tuple[OneWay, str, str], ...]:
    """(direction, from, to) of both directions of ``link``."""
    return (("forward", link.a, link.b), ("backward", link.b, link.a))


def _link_actions(link: Link, wall: Callable[[int], int]) -> list[Action]:
    if link.directed is None:
        out = _gate_actions(link.name, "both", merged_windows(link.windows) or None, wall)
    else:
        out = _gate_actions(link.name, "forward", merged_windows(link.directed[0]), wall)
        out += _gate_actions(link.name, "backward", merged_windows(link.directed[1]), wall)
    name = link.name
    for c in link.changes:
        params = MappingProxyType(dict(c.params))
        out.append(LinkChange(at_ns=c.at_ns, wall_ns=wall(c.at_ns), subject=name, direction=c.direction, params=params))
    return out


def _gate_actions(
    name: str, direction: str, windows: tuple[Window, ...] | None, wall: Callable[[int], int]
) -> list[Action]:
    """Up and down of one direction (or ``both``): None is up the whole run, () never up."""
    if windows is None:
        return [LinkUp(at_ns=0, wall_ns=wall(0), subject=name, direction=direction)]
    out: list[Action] = []
    if not windows or windows[0].start_ns > 0:
        out.append(LinkDown(at_ns=0, wall_ns=wall(0), subject=name, direction=direction))
    for w in windows:
        s, e = w.start_ns, w.end_ns
        out.append(
            LinkUp(at_ns=s, wall_ns=wall(s), subject=name, window_start_ns=s, window_end_ns=e, direction=direction)
        )
        out.append(
            LinkDown(at_ns=e, wall_ns=wall(e), subject=name, window_start_ns=s, window_end_ns=e, direction=direction)
        )
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


def _segments(link: Link, window: Window, direction: OneWay) -> list[tuple[int, int, DirectionParams]]:
    """Stretches of ``window`` with constant parameters in ``direction``: (start, end, params).

    A change of the other direction only does not split the stretch.
    """
    params = link.forward if direction == "forward" else link.backward
    mine = [c for c in link.changes if c.direction in ("both", direction)]
    for c in mine:
        if c.at_ns <= window.start_ns:
            params = _apply(params, c.params)
    out = []
    start = window.start_ns
    for c in mine:
        if not window.start_ns < c.at_ns < window.end_ns:
            continue
        if c.at_ns > start:
            out.append((start, c.at_ns, params))
            start = c.at_ns
        params = _apply(params, c.params)
    out.append((start, window.end_ns, params))
    return out


def _light_time_joined(segments: list[tuple[int, int, DirectionParams]]) -> list[tuple[int, int, DirectionParams]]:
    """Touching stretches that differ only in delay, joined, with the largest delay of them.

    Light time changes every geometry step; cutting a pass into contacts at each step
    would tell contact graph routing that no bundle larger than a step's volume can
    cross, while the session in fact carries on. The largest delay keeps the plan's
    arrival times an upper bound, as ION reads a range.
    """
    out: list[tuple[int, int, DirectionParams]] = []
    for start, end, params in segments:
        if out and out[-1][1] == start and replace(out[-1][2], delay_ns=params.delay_ns) == params:
            prev = out[-1][2]
            out[-1] = (out[-1][0], end, replace(prev, delay_ns=max(prev.delay_ns, params.delay_ns)))
        else:
            out.append((start, end, params))
    return out


def _check_round_trips(link: Link, window: Window, scale: float, warnings: list[str]) -> None:
    if link.convergence_layer == "ltp":
        return  # LTP opens no session: its first segment already carries data
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


def _closed_after(link: Link, frm: str, at_ns: int) -> bool:
    """Whether the direction leaving ``frm`` has no window left after ``at_ns`` (passes over a station)."""
    spans = link.windows_of("forward" if frm == link.a else "backward")
    return spans is not None and all(w.end_ns <= at_ns for w in spans)


def _routes(scenario: Scenario, warnings: list[str]) -> list[Route]:
    """Fewest hops, then least delay, then names: deterministic and what a static route would pick.

    A hop whose windows have all ended before the traffic starts is not a way (a
    satellite whose last pass over the station is over).
    """
    adjacency: dict[str, list[tuple[str, Link]]] = {}
    for link in scenario.links:
        for direction, frm, to in _ways(link):
            if link.windows_of(direction) != ():  # a direction never up carries nothing
                adjacency.setdefault(frm, []).append((to, link))
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
                if _closed_after(link, node, t.start_ns):
                    continue
                cost = (hops + 1, delay + link.direction(node).delay_ns)
                if nxt not in best or cost < best[nxt]:
                    best[nxt] = cost
                    heapq.heappush(heap, (*cost, path + (nxt,), links + (link.name,)))
        if found is None:  # the loader refuses this; a hand-built Scenario may not
            warnings.append(f"traffic {t.name}: no path from {t.frm} to {t.to}")
        else:
            routes.append(found)
    return routes
