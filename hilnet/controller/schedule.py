"""A link's whole script for the emulator: windows, changes, cuts and error bursts (pure).

The agents are told the windows (the contact plan) but not the faults; the
emulator gets both. The gate is up when a window is open and no cut is active.

One-way windows: the emulator's gates follow ``link.windows``, when *either*
direction is up. A direction's own windows say when it carries bundles, and
the contact plan (which agents route by) holds exactly those; the other way
stays open as the return path that every convergence layer hilnet runs needs
(TCP's handshake and ACKs, TCPCL's XFER_ACK, the serial CL's acknowledgements).
Closing it would not make the link one-way but dead: no acknowledgement, no
bundle ever leaves the sender's store. docs/scenario.md, "One-way windows".
"""

from __future__ import annotations

from hilnet.link.params import config_changes, schedule_for_link
from hilnet.link.shaper import ScheduleEvent
from hilnet.scenario.model import Cut, ErrorBurst, Link, Scenario, merged_windows
from hilnet.units import scenario_to_wall_ns


def _merged_windows(link: Link, duration_ns: int) -> list[tuple[int, int]]:
    if not link.windows:
        return [(0, max(duration_ns, 1) * 4)]  # "always up": past any run's end
    return [(w.start_ns, w.end_ns) for w in merged_windows(link.windows)]


def gate_edges(link: Link, cuts: list[Cut], duration_ns: int) -> list[tuple[int, bool]]:
    """(scenario ns, up) at 0 and at every instant the gate changes."""
    windows = _merged_windows(link, duration_ns)
    spans = [(c.at_ns, c.at_ns + c.for_ns) for c in cuts]
    points = sorted({0, *(t for w in windows for t in w), *(t for s in spans for t in s)})

    def up(t: int) -> bool:
        return any(s <= t < e for s, e in windows) and not any(s <= t < e for s, e in spans)

    edges: list[tuple[int, bool]] = []
    for t in points:
        state = up(t)
        if not edges or edges[-1][1] != state:
            edges.append((t, state))
    return edges


def emulator_schedule(scenario: Scenario, link: Link, t0_ns: int) -> tuple[list[ScheduleEvent], list[ScheduleEvent]]:
    """(a->b, b->a) ScheduleEvents in engine-clock ns for ``link`` with its faults."""
    scale = scenario.clock.scale
    cuts = [f for f in scenario.faults if isinstance(f, Cut) and f.link == link.name]
    bursts = [f for f in scenario.faults if isinstance(f, ErrorBurst) and f.link == link.name]
    windows = _merged_windows(link, scenario.clock.duration_ns)
    gate = [
        # A down edge inside a window is a cut: what is in flight is lost. Else it is the window's
        # planned end, and what has already left arrives a light time later, as the plan counts it.
        ScheduleEvent(
            at_ns=t0_ns + scenario_to_wall_ns(t, scale),
            up=u,
            keep_in_flight=not u and not any(s <= t < e for s, e in windows),
        )
        for t, u in gate_edges(link, cuts, scenario.clock.duration_ns)
    ]
    fwd_all, bwd_all = schedule_for_link(link, scale, t0_ns)
    fwd = [e for e in fwd_all if e.up is None] + gate
    bwd = [e for e in bwd_all if e.up is None] + gate
    for b in bursts:
        start = t0_ns + scenario_to_wall_ns(b.at_ns, scale)
        end = t0_ns + scenario_to_wall_ns(b.at_ns + b.for_ns, scale)
        for lst, params in ((fwd, link.forward), (bwd, link.backward)):
            base = _ber_at(link, params.ber, b.at_ns + b.for_ns, lst is fwd)
            lst.append(ScheduleEvent(at_ns=start, changes={"ber": b.ber}))
            lst.append(ScheduleEvent(at_ns=end, changes={"ber": base}))
    key = lambda e: (e.at_ns, e.up is None)  # noqa: E731 - gate first at one instant
    return sorted(fwd, key=key), sorted(bwd, key=key)


def _ber_at(link: Link, ber: float, at_ns: int, forward: bool) -> float:
    for c in link.changes:
        if c.at_ns <= at_ns and "ber" in c.params and c.direction in ("both", "forward" if forward else "backward"):
            changed = config_changes(c.params).get("ber", ber)
            ber = float(changed) if isinstance(changed, (int, float)) else ber
    return ber
