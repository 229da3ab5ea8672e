"""compile_plan: timeline order, contacts, capacities after overhead, warnings."""

from __future__ import annotations

from hilnet.scenario.actions import KINDS, BurstStart, CrashAgent, InjectBundle, LinkChange, LinkDown
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.overhead import BUNDLE_OVERHEAD
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan

S = 10**9
M = 60 * S

SAMPLE = """\
hilnet: 1
clock: {scale: 60, duration: 95m}
nodes:
  iss: {eid: ipn:1.0}
  tdrs: {eid: ipn:2.0}
  gs: {eid: ipn:4.0}
links:
  iss-tdrs:
    ends: [iss, tdrs]
    medium: serial
    baud: 115200
    delay: 120ms
    up: [0m-38m, 47m-85m]
  tdrs-gs:
    ends: [tdrs, gs]
    medium: ethernet
    rate: 10Mbit/s
    delay: 130ms
    changes: [{at: 40m, rate: 2Mbit/s, delay: 250ms}]
traffic:
  - {name: photos, from: iss, to: gs, start: 2m, every: 10m, count: 9, size: 300KiB}
faults:
  - {at: 20m, cut: tdrs-gs, for: 5m}
  - {at: 50m, crash: tdrs, restart-after: 30s}
  - {at: 60m, error-burst: iss-tdrs, for: 1m, bit-error-rate: 1e-3}
expect: {delivered: all, within: 90m}
"""


def test_serial_capacity_counts_8n1_and_framing() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    cap = plan.capacities[0]
    assert (cap.link, cap.frm, cap.to, cap.start_ns, cap.end_ns) == ("iss-tdrs", "iss", "tdrs", 0, 38 * M)
    # 38 scenario minutes at scale 60 = 38 s of wall time; rate is physics and is not scaled
    assert cap.wall_ns == 38 * S
    # 115200 baud / 10 bits per byte = 11520 B/s; frames of 1024 B cost 1024 * (1 + 2/256) + 19 + 4 + 2 = 1057
    assert abs(cap.goodput - 11520 * 1024 / 1057) < 1e-6
    assert cap.capacity_bytes == 424_092  # floor(11160.34 B/s * 38 s)


def test_ethernet_capacity_counts_frame_and_header_overhead() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    eth = [c for c in plan.capacities if c.link == "tdrs-gs" and c.frm == "tdrs"]
    # the change at 40m splits the always-up link into two contacts
    assert [(c.start_ns, c.end_ns) for c in eth] == [(0, 40 * M), (40 * M, 95 * M)]
    # 1448 B of TCP payload per 1538 B on the wire
    assert abs(eth[0].goodput - 10_000_000 / 8 * 1448 / 1538) < 1e-6
    assert abs(eth[1].goodput - 2_000_000 / 8 * 1448 / 1538) < 1e-6
    assert eth[0].capacity_bytes == int(10_000_000 / 8 * 1448 / 1538 * 40)


def test_contacts_in_scenario_and_wall_time() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    c, w = plan.contacts[0], plan.wall_contacts[0]
    assert (c.frm, c.to, c.start_ns, c.end_ns) == ("iss", "tdrs", 0, 38 * M)
    assert c.owlt_ns == 120_000_000 * 60  # physical delay seen on the scenario clock
    assert c.rate == int(11520 * 1024 / 1057 / 60)  # bytes per scenario second
    assert (w.start_ns, w.end_ns, w.owlt_ns, w.rate) == (0, 38 * S, 120_000_000, int(11520 * 1024 / 1057))
    # the contact's volume agrees with the capacity, up to rounding the rate down
    assert abs(c.volume - plan.capacities[0].capacity_bytes) < 60 * 38
    later = [x for x in plan.contacts if x.frm == "tdrs" and x.to == "gs"][1]
    assert later.owlt_ns == 250_000_000 * 60
    assert len(plan.contacts) == 8  # 2 windows x 2 directions + 2 stretches x 2 directions


def test_timeline_is_ordered_with_wall_times() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    assert [a.at_ns for a in plan.actions] == sorted(a.at_ns for a in plan.actions)
    assert all(a.wall_ns == round(a.at_ns / 60) for a in plan.actions)
    kinds = [(a.at_ns // S, a.kind, a.subject) for a in plan.actions if a.kind != "inject"]
    assert kinds == [
        (0, "link-up", "iss-tdrs"),
        (0, "link-up", "tdrs-gs"),
        (1200, "cut", "tdrs-gs"),
        (1500, "restore", "tdrs-gs"),
        (2280, "link-down", "iss-tdrs"),
        (2400, "link-change", "tdrs-gs"),
        (2820, "link-up", "iss-tdrs"),
        (3000, "crash", "tdrs"),
        (3030, "restart", "tdrs"),
        (3600, "burst-start", "iss-tdrs"),
        (3660, "burst-end", "iss-tdrs"),
        (5100, "link-down", "iss-tdrs"),
    ]
    injects = [a for a in plan.actions if isinstance(a, InjectBundle)]
    assert [a.seq for a in injects] == list(range(9))
    assert injects[-1].at_ns == 82 * M and injects[-1].size == 300 * 1024
    change = next(a for a in plan.actions if isinstance(a, LinkChange))
    assert (change.direction, dict(change.params)) == ("both", {"rate_bps": 2_000_000, "delay_ns": 250_000_000})


def test_same_instant_goes_down_before_up_and_injects_last() -> None:
    text = SAMPLE.replace("up: [0m-38m, 47m-85m]", "up: [10m-38m, 38m-50m, 60m-70m]").replace(
        "start: 2m, every: 10m, count: 9", "start: 60m, count: 1"
    )
    plan = compile_plan(load_scenario_text(text))
    first = [(a.at_ns // M, a.kind) for a in plan.actions if a.subject in ("iss-tdrs", "photos")]
    # touching windows 10m-38m and 38m-50m are one stretch: no down/up at 38m
    assert first == [
        (0, "link-down"),
        (10, "link-up"),
        (50, "link-down"),
        (60, "link-up"),
        (60, "burst-start"),
        (60, "inject"),
        (61, "burst-end"),
        (70, "link-down"),
    ]
    at60 = [a.kind for a in plan.actions if a.at_ns == 60 * M]
    assert at60 == ["link-up", "burst-start", "inject"]


def test_warns_when_traffic_cannot_fit() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    load = next(lo for lo in plan.loads if lo.link == "iss-tdrs")
    assert load.bundles == 9 and load.offered_bytes == 9 * (300 * 1024 + BUNDLE_OVERHEAD)
    # from the first injection at 2m: 36 of the first window's 38 minutes, and all of the second
    assert load.capacity_bytes == 424_092 * 36 // 38 + 424_092
    assert plan.warnings == (
        "link iss-tdrs iss->tdrs: traffic offers 2.637MiB in 9 bundles but its windows carry 806.5KiB from the "
        "first injection at 2m (scale 60): it cannot all fit",
    )
    assert [r.path for r in plan.routes] == [("iss", "tdrs", "gs")]


def test_fits_at_a_slower_scale() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE.replace("scale: 60", "scale: 10")))
    assert plan.warnings == ()


def test_warns_about_a_bundle_bigger_than_any_window_and_short_windows() -> None:
    text = SAMPLE.replace("up: [0m-38m, 47m-85m]", "up: [0m-30s, 47m-48m]").replace("count: 9", "count: 1")
    plan = compile_plan(load_scenario_text(text))
    assert plan.warnings == (
        "link iss-tdrs window 0s-30s lasts 500ms of wall time at scale 60, less than 3 round trips (720ms): "
        "a session may not even open in it",
        "traffic photos: a 300KiB bundle needs 300.1KiB on iss-tdrs iss->tdrs, but its largest window carries "
        "10.9KiB at scale 60: without fragmentation it never crosses",
        "link iss-tdrs iss->tdrs: traffic offers 300.1KiB in 1 bundles but its windows carry 10.9KiB from the "
        "first injection at 2m (scale 60): it cannot all fit",
    )


def test_prefers_fewest_hops_then_least_delay() -> None:
    text = SAMPLE.replace(
        "traffic:",
        """\
  iss-gs-slow:
    ends: [iss, gs]
    medium: ethernet
    delay: 2s
  iss-gs-fast:
    ends: [gs, iss]
    medium: ethernet
    delay: 1s
traffic:""",
    )
    plan = compile_plan(load_scenario_text(text))
    assert [(r.path, r.links) for r in plan.routes] == [(("iss", "gs"), ("iss-gs-fast",))]


def test_views_hold_the_same_facts() -> None:
    plan = compile_plan(load_scenario_text(SAMPLE))
    data = plan_to_json(plan)
    assert len(data["actions"]) == len(plan.actions) and data["warnings"] == list(plan.warnings)
    assert data["capacities"][0]["capacity_bytes"] == 424_092
    text = render_plan(plan)
    assert "38m       38s    link-down    iss-tdrs" in text
    assert "iss   tdrs  iss-tdrs  0s-38m           38s   10.9KiB/s   120ms  414.2KiB" in text
    assert "  ! link iss-tdrs iss->tdrs: traffic offers" in text


def test_each_action_kind_is_its_own_type() -> None:
    text = SAMPLE.replace("up: [0m-38m, 47m-85m]", "up: [10m-38m]")
    text = text.replace("expect:", "  - {at: 70m, power-cut: iss, for: 2m}\nexpect:")  # a bench-only fault
    plan = compile_plan(load_scenario_text(text))
    by_kind = {type(a).kind: type(a) for a in plan.actions}
    assert set(by_kind) == set(KINDS)
    crash = next(a for a in plan.actions if isinstance(a, CrashAgent))
    assert (crash.node, crash.restart_after_ns) == ("tdrs", 30 * S)
    burst = next(a for a in plan.actions if isinstance(a, BurstStart))
    assert (burst.link, burst.for_ns, burst.ber) == ("iss-tdrs", 60 * S, 1e-3)
    first = plan.actions[0]
    assert isinstance(first, LinkDown) and first.window_start_ns is None
    assert plan_to_json(plan)["actions"][0]["details"] == {}
