"""``clock.compress: all`` end to end: a link whose light time is a scenario minute runs it in a wall second.

Under ``compress: schedule`` the same link would hold every bundle a real minute
and the 20-minute scenario (20 wall seconds at scale 60) could deliver nothing
in time; compressed, each bundle arrives one scenario minute (one wall second)
after it left, as in reality, and the run takes 20 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary, write_scenario

from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan

MIN = 60_000_000_000
S = 1_000_000_000

TEXT = """
    hilnet: 1
    name: compressed
    clock: {scale: 60, duration: 20m, compress: all}
    nodes: {probe: {eid: ipn:1.0}, station: {eid: ipn:2.0}}
    links:
      probe-station: {ends: [probe, station], medium: ethernet, rate: 256kbit/s, delay: 1m, up: [2m-18m]}
    traffic:
      - {name: frames, from: probe, to: station, start: 1m, every: 3m, count: 3, size: 20KiB}
    expect: {delivered: all, within: 12m}
"""


def test_the_plan_gives_the_agents_a_light_time_of_one_wall_second(tmp_path: Path) -> None:
    plan = compile_plan(load_scenario(write_scenario(tmp_path, "compressed", TEXT)))
    assert {c.owlt_ns for c in plan.wall_contacts} == {S}
    assert {c.owlt_ns for c in plan.contacts} == {MIN}  # scenario time: the light time as written
    # 16 scenario minutes at 256 kbit/s, as in reality (before framing overhead)
    assert all(c.capacity_bytes <= 256_000 // 8 * 16 * 60 for c in plan.capacities)
    assert all(c.capacity_bytes > 0.9 * 256_000 // 8 * 16 * 60 for c in plan.capacities)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compressed_light_time_delays_each_bundle_by_it(tmp_path: Path, backend: str) -> None:
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(write_scenario(tmp_path, "compressed", TEXT), out, backend, timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True
    bundles = {b["tag"]: b for b in s["bundles"]}
    assert set(bundles) == {"frames#1", "frames#2", "frames#3"}
    assert all(b["deliveries"] == 1 and b["intact"] for b in bundles.values())
    # frames#1 waits for the window at 2m, then a light time: never before 3m. TCPCL needs
    # about 2.5 round trips (TCP, contact headers, SESS_INIT) first, 5 scenario minutes here.
    assert bundles["frames#1"]["delivered_ns"] >= 3 * MIN - S, bundles["frames#1"]
    for b in bundles.values():
        assert b["latency_ns"] >= MIN - S, b  # never faster than light
    start = next(e for e in events(out) if e.get("event") == "run-start")
    assert start["compress"] == "all"
    leaks.check(out)
