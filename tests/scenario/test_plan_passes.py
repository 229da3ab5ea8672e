"""The plan with pass-like windows: routes skip a hop whose windows are over; light time joins contacts."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from hilnet.scenario.geometry.positions import LinkGeometry
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import Change
from hilnet.scenario.plan import compile_plan

TEXT = """hilnet: 1
clock: {scale: 60, duration: 1h}
nodes:
  a: {eid: ipn:1.0}
  s1: {eid: ipn:2.0}
  s2: {eid: ipn:3.0}
  b: {eid: ipn:4.0}
links:
  a-s1: {ends: [a, s1], medium: ethernet, up: [0m-5m]}
  a-s2: {ends: [a, s2], medium: ethernet, up: [20m-30m]}
  s1-b: {ends: [s1, b], medium: ethernet, up: [40m-50m]}
  s2-b: {ends: [s2, b], medium: ethernet, up: [40m-50m]}
traffic:
  - {name: t, from: a, to: b, start: 10m, count: 1, size: 1KiB}
"""


def test_route_skips_a_hop_whose_passes_are_over() -> None:
    plan = compile_plan(load_scenario_text(TEXT))
    assert [r.path for r in plan.routes] == [("a", "s2", "b")]  # s1's pass over a ended at 5m
    assert not plan.warnings


def test_light_time_changes_do_not_cut_contacts_but_other_changes_do() -> None:
    s = load_scenario_text(TEXT)
    link = s.link("a-s2")
    delays = tuple(
        Change(at, "both", MappingProxyType({"delay_ns": d}))
        for at, d in ((21 * 60 * 10**9, 5_000_000), (22 * 60 * 10**9, 7_000_000))
    )
    geo = LinkGeometry(step_ns=60 * 10**9, line_of_sight=True, light_time=True, passes=())
    light = replace(link, changes=delays, geometry=geo)
    plan = compile_plan(replace(s, links=tuple(light if x.name == "a-s2" else x for x in s.links)))
    mine = [c for c in plan.contacts if (c.frm, c.to) == ("a", "s2")]
    assert [(c.start_ns, c.end_ns) for c in mine] == [(20 * 60 * 10**9, 30 * 60 * 10**9)]
    assert plan.wall_contacts[plan.contacts.index(mine[0])].owlt_ns == 7_000_000  # the largest light time
    # The same changes on a link without computed light time cut the window as before.
    plain = replace(link, changes=delays)
    plan = compile_plan(replace(s, links=tuple(plain if x.name == "a-s2" else x for x in s.links)))
    assert len([c for c in plan.contacts if (c.frm, c.to) == ("a", "s2")]) == 3
