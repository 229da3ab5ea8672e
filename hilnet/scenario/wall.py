"""A scenario in wall terms: what ``clock.compress`` makes of each link's physics, and what cannot run.

The rule itself is :mod:`hilnet.units`' (:func:`~hilnet.units.physics_wall_ns`,
:func:`~hilnet.units.physics_wall_rate`); this module applies it to the model,
once, so that every consumer downstream (the plan and its contacts, the link
engine's configs and schedules, the agents' CLAs and contact plans) reads wall
figures and none of them knows about compression:

- :func:`in_wall_terms` returns the scenario with every link's delay, jitter,
  rate and baud (and each change of them) as the wall clock will run them;
- :func:`refusals` says which rates and bauds no backend can run at that
  scale, at the file position that sets them;
- :func:`wall_rows` pairs each link direction's physical figures with its wall ones,
  for ``hilnet plan``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from hilnet.errors import ScenarioError
from hilnet.scenario.model import ClockSpec, DirectionParams, Link, Pacing, Scenario
from hilnet.units import format_rate, physics_wall_ns, physics_wall_rate

# The fastest an emulated Ethernet (or UDP, or TCP relay) direction may be asked to run, in wall
# bit/s. The link engine is held to 50,000 frames/s of 1500 bytes (600 Mbit/s) by
# benchmarks/link_accuracy.py ("forwarding": 190,000 to 220,000 frames/s unimpaired over veth on
# a 2-core VM); a Gigabit NIC on a bench carries no more than 1 Gbit/s anyway. The ceiling bounds
# the rate a link is set to, which under compression is what a window's real volume needs; a link
# that is never saturated keeps its timing at any rate. Saturated, through UDP endpoints on a
# loaded 2-core VM, the engine kept 300 Mbit/s of 1400-byte datagrams and topped out near
# 285 Mbit/s when set to 600 (benchmarks/compress_ceiling.py): measure the host you run on.
MAX_WALL_RATE_BPS = 600_000_000
# The fastest UART line a backend paces, in wall baud: a Raspberry Pi's PL011 UART (48 MHz
# UART clock / 16) and FTDI FT232R or CP2102N USB-serial adapters top out at 3 Mbaud, and the
# engine's pty pacing is measured against the baud by benchmarks/link_accuracy.py.
MAX_WALL_BAUD = 3_000_000

_DURATIONS = ("delay_ns", "jitter_ns")
_RATES = ("rate_bps", "baud")


def wall_fields(fields: Mapping[str, object], clock: ClockSpec) -> dict[str, object]:
    """DirectionParams field -> value, with delay and jitter, rate and baud in wall terms."""
    out = dict(fields)
    for name in _DURATIONS:
        value = out.get(name)
        if isinstance(value, int):
            out[name] = physics_wall_ns(value, clock.scale, clock.compress)
    for name in _RATES:
        value = out.get(name)
        if isinstance(value, int):
            out[name] = physics_wall_rate(value, clock.scale, clock.compress)
    return out


def wall_params(params: DirectionParams, clock: ClockSpec) -> DirectionParams:
    """One direction's parameters as the wall clock runs them."""
    return params.updated(wall_fields({n: getattr(params, n) for n in _DURATIONS + _RATES}, clock))


def _wall_link(link: Link, clock: ClockSpec) -> Link:
    changes = tuple(replace(c, params=MappingProxyType(wall_fields(c.params, clock))) for c in link.changes)
    return replace(
        link, forward=wall_params(link.forward, clock), backward=wall_params(link.backward, clock), changes=changes
    )


def in_wall_terms(scenario: Scenario) -> Scenario:
    """``scenario`` with its links' physics as the wall clock runs them (itself under ``compress: schedule``).

    Done once: the result says so (``clock.physics_wall``) and is returned as is when asked again.
    """
    clock = scenario.clock
    if clock.physics_wall or clock.compress == "schedule":
        return scenario
    links = tuple(_wall_link(link, clock) for link in scenario.links)
    return replace(scenario, links=links, clock=replace(clock, physics_wall=True))


def refusals(scenario: Scenario) -> list[ScenarioError]:
    """One error per rate or baud that no backend runs at this scale and compression, where the file sets it."""
    clock = scenario.clock
    out = []
    for link in scenario.links:
        for p in link.pacing:
            message = refusal(p, clock)
            if message:
                out.append(ScenarioError(message, scenario.source, p.line, p.col))
    return out


def refusal(p: Pacing, clock: ClockSpec) -> str | None:
    """Why rate or baud ``p`` cannot run at ``clock``'s scale and compression; None when it can."""
    wall = physics_wall_rate(p.value, clock.scale, clock.compress)
    shown: Callable[[int], str]
    limit: int
    if p.field == "rate_bps":
        limit, shown, why = MAX_WALL_RATE_BPS, format_rate, "the most the link engine forwards"
    else:
        limit, shown, why = MAX_WALL_BAUD, _baud, "the fastest UART line a backend paces (3 Mbaud)"
    if wall <= limit:
        return None
    written = format_rate(p.value) if p.field == "rate_bps" else str(p.value)
    if clock.compress == "all":
        return (
            f"{p.what} {written} runs at {shown(wall)} of wall time at scale {clock.scale:g} "
            f"with compress: all, above {shown(limit)}, {why}; expected clock.scale at most "
            f"{limit / p.value:.4g} for this link (or compress: schedule, which keeps rates physical)"
        )
    return f"{p.what} {written} is above {shown(limit)}, {why}; expected at most {shown(limit)}"


def _baud(baud: int) -> str:
    return f"{baud} baud"


@dataclass(frozen=True, slots=True)
class WallRow:
    """One link direction's figures as written (physical) and as the wall clock runs them."""

    link: str
    frm: str
    to: str
    medium: str
    delay_ns: int
    wall_delay_ns: int
    jitter_ns: int
    wall_jitter_ns: int
    pace: int  # bit/s (ethernet) or baud (serial), physical
    wall_pace: int


def wall_rows(scenario: Scenario) -> tuple[WallRow, ...]:
    """Each link direction at the start of the run, physical beside wall (changes follow the same rule)."""
    clock = scenario.clock
    rows = []
    for link in scenario.links:
        for frm, to, params in ((link.a, link.b, link.forward), (link.b, link.a, link.backward)):
            wall = params if clock.physics_wall else wall_params(params, clock)
            pace, wall_pace = (params.baud, wall.baud) if link.medium == "serial" else (params.rate_bps, wall.rate_bps)
            rows.append(
                WallRow(
                    link.name,
                    frm,
                    to,
                    link.medium,
                    params.delay_ns,
                    wall.delay_ns,
                    params.jitter_ns,
                    wall.jitter_ns,
                    pace or 0,
                    wall_pace or 0,
                )
            )
    return tuple(rows)
