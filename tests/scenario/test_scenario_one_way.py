"""One-way windows: a direction block's own ``up:`` and ``changes:``, through loader, plan and views."""

from __future__ import annotations

import pytest

from hilnet.controller.schedule import emulator_schedule, gate_edges
from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.actions import LinkDown, LinkUp
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan

MIN = 60_000_000_000
HEAD = "hilnet: 1\nclock: {scale: 60, duration: 60m}\nnodes:\n  iss: {eid: ipn:1.0}\n  gs: {eid: ipn:2.0}\n"
LINK = "links:\n  l:\n    ends: [iss, gs]\n    medium: ethernet\n"

ONE_WAY = (
    HEAD
    + LINK
    + """\
    rate: 10Mbit/s
    iss->gs: {up: [0m-20m, 40m-50m]}
    gs->iss:
      up: [10m-20m]
      rate: 1Mbit/s
      changes: [{at: 15m, rate: 2Mbit/s}]
"""
)


def _spans(windows: object) -> list[tuple[int, int]]:
    return [(w.start_ns // MIN, w.end_ns // MIN) for w in windows]  # type: ignore[attr-defined]


def test_each_direction_has_its_windows_and_the_link_their_union() -> None:
    link = load_scenario_text(ONE_WAY).link("l")
    assert link.one_way
    assert _spans(link.windows_of("forward")) == [(0, 20), (40, 50)]
    assert _spans(link.windows_of("backward")) == [(10, 20)]
    assert _spans(link.windows) == [(0, 20), (40, 50)]  # when the medium is up at all
    assert [(c.at_ns // MIN, c.direction, dict(c.params)) for c in link.changes] == [
        (15, "backward", {"rate_bps": 2_000_000})
    ]
    assert link.backward.rate_bps == 1_000_000 and link.forward.rate_bps == 10_000_000


def test_a_direction_without_its_own_up_follows_the_link() -> None:
    text = HEAD + LINK + "    up: [5m-30m]\n    gs->iss: {up: []}\n"
    link = load_scenario_text(text).link("l")
    assert _spans(link.windows_of("forward")) == [(5, 30)]
    assert link.windows_of("backward") == ()  # never: a one-way link
    always = load_scenario_text(HEAD + LINK + "    gs->iss: {up: [5m-10m]}\n").link("l")
    assert _spans(always.windows_of("forward")) == [(0, 60)]
    assert _spans(always.windows) == [(0, 60)]


def test_the_same_windows_both_ways_are_an_ordinary_link() -> None:
    text = HEAD + LINK + "    iss->gs: {up: [5m-10m]}\n    gs->iss: {up: [5m-10m]}\n"
    link = load_scenario_text(text).link("l")
    assert not link.one_way and _spans(link.windows) == [(5, 10)]


def test_plan_contacts_and_actions_follow_each_direction() -> None:
    plan = compile_plan(load_scenario_text(ONE_WAY))
    contacts = [(c.frm, c.to, c.start_ns // MIN, c.end_ns // MIN) for c in plan.contacts]
    assert contacts == [
        ("iss", "gs", 0, 20),
        ("gs", "iss", 10, 15),  # split by the backward-only change
        ("gs", "iss", 15, 20),
        ("iss", "gs", 40, 50),
    ]
    assert [c.rate for c in plan.wall_contacts if c.frm == "gs"][1] == 2 * [
        c.rate for c in plan.wall_contacts if c.frm == "gs"
    ][0]
    gates = [(a.at_ns // MIN, a.kind, a.direction) for a in plan.actions if isinstance(a, (LinkUp, LinkDown))]
    assert gates == [
        (0, "link-down", "backward"),  # at one instant, downs go first
        (0, "link-up", "forward"),
        (10, "link-up", "backward"),
        (20, "link-down", "forward"),
        (20, "link-down", "backward"),
        (40, "link-up", "forward"),
        (50, "link-down", "forward"),
    ]
    assert not any("no path" in w for w in plan.warnings)


def test_plan_views_name_the_direction() -> None:
    plan = compile_plan(load_scenario_text(ONE_WAY))
    text = render_plan(plan)
    assert "10m       10s   link-up      l        backward only" in text
    ups = [a for a in plan_to_json(plan)["actions"] if a["kind"] == "link-up"]
    assert ups[1]["details"] == {"window_start_ns": 10 * MIN, "window_end_ns": 20 * MIN, "direction": "backward"}


def test_a_direction_never_up_carries_no_route() -> None:
    text = HEAD + LINK + "    gs->iss: {up: []}\ntraffic:\n  - {name: t, from: iss, to: gs, start: 1m, size: 1KiB}\n"
    plan = compile_plan(load_scenario_text(text))
    assert {(c.frm, c.to) for c in plan.contacts} == {("iss", "gs")}
    assert [r.path for r in plan.routes] == [("iss", "gs")]


def test_emulator_gates_open_while_either_direction_is_up() -> None:
    """The return path: a one-way window keeps the medium open both ways (docs/scenario.md)."""
    s = load_scenario_text(ONE_WAY)
    link = s.link("l")
    assert [(t // MIN, up) for t, up in gate_edges(link, [], s.clock.duration_ns)] == [
        (0, True),
        (20, False),
        (40, True),
        (50, False),
    ]
    fwd, bwd = emulator_schedule(s, link, 0)
    assert [(e.at_ns, e.up) for e in fwd if e.up is not None] == [(e.at_ns, e.up) for e in bwd if e.up is not None]
    # ...while parameter changes stay in their own direction
    assert [e.changes for e in bwd if e.up is None] == [{"rate_bps": 2_000_000}]
    assert [e.changes for e in fwd if e.up is None] == []


BAD = {
    "overlap_in_one_direction": (
        HEAD + LINK + "    gs->iss: {up: [0m-20m, 10m-30m]}\n",
        ["10:28: link 'l' gs->iss window '10m-30m' overlaps '0m-20m' (line 10); expected windows that do not overlap"],
    ),
    "direction_not_an_end": (
        HEAD + LINK + "    gs->mars: {up: [0m-20m]}\n",
        ["10:5: link 'l': 'gs->mars' names 'mars', not an end of this link; expected iss->gs or gs->iss"],
    ),
    "up_everywhere": (
        HEAD + LINK + "    up: [0m-5m]\n    iss->gs: {up: [0m-20m]}\n    gs->iss: {up: [0m-10m]}\n",
        [
            "10:5: link 'l': up is given for the link and for both directions (iss->gs, gs->iss), so the "
            "link's own is never used; expected it in one place"
        ],
    ),
    "never_up": (
        HEAD + LINK + "    iss->gs: {up: []}\n    gs->iss: {up: []}\n",
        ["10:14: link 'l' is never up in either direction; expected a window in one of them"],
    ),
    "window_after_duration": (
        HEAD + LINK + "    iss->gs: {up: [50m-70m]}\n",
        [
            "10:20: link 'l' iss->gs window '50m-70m' ends after clock.duration (1h); expected windows within it",
        ],
    ),
    "nested_direction_in_a_direction_change": (
        HEAD + LINK + "    iss->gs:\n      changes: [{at: 5m, gs->iss: {rate: 1Mbit/s}}]\n",
        [
            "11:26: unknown key 'gs->iss' in link 'l' iss->gs change; expected one of: at, delay, jitter, "
            "rate, baud, loss, bit-error-rate, queue, queue-units",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_one_way_windows_report_their_place(name: str) -> None:
    text, expected = BAD[name]
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "s.yaml")
    assert [ScenarioError.__str__(e) for e in info.value.errors] == [f"s.yaml:{e}" for e in expected]


def test_clock_epoch() -> None:
    s = load_scenario_text(
        "hilnet: 1\nclock: {duration: 1m, epoch: 2009-01-01T00:00:00Z}\nnodes: {a: {eid: ipn:1.0}}\n"
    )
    assert s.clock.epoch == "2009-01-01T00:00:00Z" and s.clock.epoch_unix_ns == 1_230_768_000 * 10**9
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(
            "hilnet: 1\nclock: {duration: 1m, epoch: 2009-01-01T00:00:00}\nnodes: {a: {eid: ipn:1.0}}\n", "s"
        )
    assert str(info.value) == (
        "s:2:30: clock.epoch '2009-01-01T00:00:00' is not a UTC ISO 8601 time; expected a UTC time in "
        "ISO 8601 such as 2024-03-01T12:00:00Z"
    )
