"""Offered traffic against what the windows carry: the plan's capacity and load figures.

A :class:`Capacity` is what one contact (one direction, one stretch of a
window) can carry; a :class:`Load` sets the traffic routed over a link
direction against the sum of its contacts, and splits it by class of service
as ION's contact graph routing books volume: each class gets what the classes
above it leave. Times are scenario ns, sizes bytes. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hilnet.scenario.model import Scenario
from hilnet.scenario.overhead import bundle_bytes, security_bytes
from hilnet.units import format_duration, format_size


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
    # per class present, most urgent first: (class, bytes offered, capacity left after the classes above)
    by_class: tuple[ClassLoad, ...] = ()


@dataclass(frozen=True, slots=True)
class ClassLoad:
    """One class of service's share of a :class:`Load`."""

    priority: str  # expedited, normal or bulk
    offered_bytes: int
    capacity_bytes: int  # the direction's capacity less what higher classes offer (>= 0)


@dataclass(frozen=True, slots=True)
class Route:
    traffic: str
    path: tuple[str, ...]  # node names, source first
    links: tuple[str, ...]


def offered_loads(
    scenario: Scenario, routes: list[Route], capacities: list[Capacity], warnings: list[str]
) -> list[Load]:
    """Per link direction: the traffic routed that way against what its windows carry, with warnings."""
    traffic = {t.name: t for t in scenario.traffic}
    offered: dict[tuple[str, str, str], list[int]] = {}  # (link, frm, to) -> [bundles, bytes, first injection]
    per_class: dict[tuple[str, str, str], dict[str, int]] = {}  # (link, frm, to) -> class -> bytes
    for route in routes:
        t = traffic[route.traffic]
        for frm, to, link_name in zip(route.path, route.path[1:], route.links):
            link = scenario.link(link_name)
            per_bundle = bundle_bytes(link.medium, t.size) + security_bytes(scenario, t)
            entry = offered.setdefault((link_name, frm, to), [0, 0, t.start_ns])
            entry[0] += t.count
            entry[1] += per_bundle * t.count
            entry[2] = min(entry[2], t.start_ns)
            classes = per_class.setdefault((link_name, frm, to), {})
            classes[t.priority] = classes.get(t.priority, 0) + per_bundle * t.count
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
        by_class = class_loads(per_class[(link_name, frm, to)], cap)
        loads.append(Load(link_name, frm, to, bundles, nbytes, cap, by_class))
        if nbytes > cap:
            short = ", ".join(
                f"{c.priority} offers {format_size(c.offered_bytes)} of {format_size(c.capacity_bytes)} left to it"
                for c in by_class
                if c.offered_bytes > c.capacity_bytes
            )
            warnings.append(
                f"link {link_name} {frm}->{to}: traffic offers {format_size(nbytes)} in {bundles} "
                f"bundles but its windows carry {format_size(cap)} from the first injection at "
                f"{format_duration(first)} (scale {scenario.clock.scale:g}): it cannot all fit"
                + (f" ({short})" if len(by_class) > 1 else "")  # with one class, that is the whole story
            )
    return loads


CLASS_ORDER = ("expedited", "normal", "bulk")  # most urgent first


def class_loads(offered: Mapping[str, int], capacity: int) -> tuple[ClassLoad, ...]:
    """Each class's offer against what the classes above it leave of ``capacity`` (ION's booking)."""
    out = []
    above = 0
    for c in CLASS_ORDER:
        if c in offered:
            out.append(ClassLoad(c, offered[c], max(0, capacity - above)))
            above += offered[c]
    return tuple(out)
