"""A planned window's end lets what is already on its way arrive; a cut loses it.

With a 20-minute light time the difference is the last 20 minutes of every pass:
the contact plan (and ION's) counts data sent before a contact ends as delivered
a light time later, so the emulator must too. A cut is a cable pulled.
"""

from __future__ import annotations

from hilnet.controller.schedule import emulator_schedule
from hilnet.link.params import schedule_for_link
from hilnet.link.shaper import Direction, DirectionConfig, Medium, ScheduleEvent
from hilnet.scenario.load import load_scenario_text

MS = 1_000_000
FRAME = bytes(100)


def _sent_then_closed(keep_in_flight: bool) -> Direction:
    d = Direction(DirectionConfig(delay_ns=500 * MS, rate_bps=8_000_000), Medium.ETHERNET, seed=1)
    d.schedule(ScheduleEvent(at_ns=100 * MS, up=False, keep_in_flight=keep_in_flight))
    for t in range(0, 100 * MS, 10 * MS):  # ten frames, each on its way long before the gate closes
        d.accept(FRAME, t)
    assert d.pop_due(99 * MS) == []
    return d


def test_a_planned_end_delivers_what_is_in_flight() -> None:
    d = _sent_then_closed(keep_in_flight=True)
    assert len(d.pop_due(700 * MS)) == 10
    assert d.stats.drops["cut-in-flight"] == 0


def test_a_cut_loses_what_is_in_flight() -> None:
    d = _sent_then_closed(keep_in_flight=False)
    assert d.pop_due(700 * MS) == []
    assert d.stats.drops["cut-in-flight"] == 10


def test_nothing_new_leaves_after_a_planned_end() -> None:
    d = _sent_then_closed(keep_in_flight=True)
    d.accept(FRAME, 150 * MS)
    assert len(d.pop_due(2_000 * MS)) == 10 and d.stats.drops["down"] == 1


SCENARIO = """\
hilnet: 1
clock: {scale: 60, duration: 1h}
nodes: {a: {eid: ipn:1.0}, b: {eid: ipn:2.0}}
links:
  ab: {ends: [a, b], medium: ethernet, delay: 10m, up: [0m-30m, 40m-50m]}
faults:
  - {at: 10m, cut: ab, for: 5m}
"""


def test_the_run_script_tells_window_ends_from_cuts() -> None:
    sc = load_scenario_text(SCENARIO)
    fwd, bwd = emulator_schedule(sc, sc.links[0], t0_ns=0)
    downs = [(e.at_ns // 1_000_000_000, e.keep_in_flight) for e in fwd if e.up is False]
    assert downs == [(10, False), (30, True), (50, True)]  # wall s: the cut at 10m, the ends at 30m and 50m
    assert [e for e in bwd if e.up is False] == [e for e in fwd if e.up is False]
    fwd_link, _ = schedule_for_link(sc.links[0], 60, 0)  # hilnet link --scenario: windows only
    assert [(e.at_ns // 1_000_000_000, e.keep_in_flight) for e in fwd_link if e.up is False] == [(30, True), (50, True)]
