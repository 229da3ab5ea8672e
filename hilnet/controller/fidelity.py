"""Schedule fidelity: every scripted link change, when it was meant to happen and when it did (pure).

:func:`fidelity_of` collects the link records of a run's log (intended and
applied wall time of each gate or parameter change) into the figures the
reports show; :func:`fidelity_check` is the verdict's ``fidelity`` row: every
change within ``expect.fidelity`` of its time, by default
:data:`DEFAULT_FIDELITY_NS` for the run's backend, the worst changes named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hilnet.scenario.model import Scenario
from hilnet.units import format_duration, wall_to_scenario_ns
from hilnet.verdict import CheckResult, EdgeTiming, Fidelity, RemotePort

# The schedule fidelity a run is held to when its scenario states none, per backend: on
# one machine the engine's loop is a few microseconds late when the host is quiet; a bench
# host also drives USB adapters and NICs and often runs the controller (docs/scenario.md).
DEFAULT_FIDELITY_NS = {"loopback": 1_000_000, "netns": 1_000_000, "bench": 5_000_000}
FIDELITY_LINES = 10  # the worst changes named in a failure; a count says how many more


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def fidelity_of(events: Iterable[Mapping[str, Any]]) -> Fidelity:
    """Schedule fidelity: every link gate or parameter change, intended vs applied."""
    edges = []
    for e in events:
        if e.get("src") == "link" and e.get("event") in ("up", "down", "change") and "intended_wall_ns" in e:
            edges.append(
                EdgeTiming(e["link"], e.get("direction", ""), e["event"], e["intended_wall_ns"], e["applied_wall_ns"])
            )
    errors = [abs(x.error_ns) for x in edges]
    return Fidelity(
        tuple(edges),
        _percentile(errors, 0.5),
        _percentile(errors, 0.99),
        max(errors) if errors else None,
        _remote_ports(events),
    )


def _remote_ports(events: Iterable[Mapping[str, Any]]) -> tuple[RemotePort, ...]:
    """The link ends the ``link-stats`` records name as remote, once each (the last record wins)."""
    found: dict[tuple[str, str], RemotePort] = {}
    for e in events:
        if e.get("src") != "controller" or e.get("event") != "link-stats" or not isinstance(e.get("stats"), Mapping):
            continue
        for direction in e["stats"].values():
            for r in direction.get("remote", ()) if isinstance(direction, Mapping) else ():
                if isinstance(r, Mapping):
                    key = (str(e.get("link")), str(r.get("end")))
                    found[key] = RemotePort(
                        *key, str(r.get("server")), _int_or_none(r.get("rtt_us")), _int_or_none(r.get("rttvar_us"))
                    )
    return tuple(found[k] for k in sorted(found))


def _int_or_none(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def backend_of(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The backend the ``run-start`` record names (None: no such record)."""
    for e in events:
        if e.get("src") == "controller" and e.get("event") == "run-start":
            backend = e.get("backend")
            return backend if isinstance(backend, str) else None
    return None


def fidelity_check(scenario: Scenario, fidelity: Fidelity, backend: str | None) -> CheckResult:
    """Every link change within the bound; the worst ones named, each with its scenario time."""
    bound = scenario.expect.fidelity_ns
    if bound is None:
        bound = DEFAULT_FIDELITY_NS.get(backend or "", DEFAULT_FIDELITY_NS["loopback"])
    edges = sorted(fidelity.edges, key=lambda e: abs(e.error_ns), reverse=True)
    over = [e for e in edges if abs(e.error_ns) > bound]
    scale = scenario.clock.scale
    lines = [
        f"link {e.link} {e.direction} {e.what} due at {format_duration(wall_to_scenario_ns(e.intended_ns, scale))} "
        f"was applied {format_duration(abs(e.error_ns))} {'late' if e.error_ns > 0 else 'early'}"
        for e in over[:FIDELITY_LINES]
    ]
    if over:
        lines[0] += f" (the worst of {len(over)} of {len(edges)} changes over {format_duration(bound)})"
    if len(over) > FIDELITY_LINES:
        lines.append(f"... and {len(over) - FIDELITY_LINES} more changes over {format_duration(bound)}")
    if not edges:
        actual = "no link changes"
    else:
        actual = f"max {format_duration(abs(edges[0].error_ns))}, p99 {format_duration(fidelity.p99_ns or 0)}"
    return CheckResult("fidelity", not over, f"every link change <= {format_duration(bound)}", actual, tuple(lines))
