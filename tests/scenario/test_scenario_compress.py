"""``clock.compress``: the rule (hilnet.units), the model in wall terms, the plan, the refusals, the link.

Under ``compress: all`` a window must carry what it carries in reality and every
light time must shrink with the scale; these tests hold the plan, the emulator's
script and the shaper itself to that, with plain values (the shaper takes ``now``).
"""

from __future__ import annotations

import dataclasses

import pytest

from hilnet.controller.run import RunOptions, prepare
from hilnet.controller.schedule import emulator_schedule
from hilnet.errors import ScenarioErrors, UnitError
from hilnet.link.params import direction_config_from_params
from hilnet.link.shaper import Direction, Medium
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan
from hilnet.scenario.wall import in_wall_terms
from hilnet.units import physics_wall_ns, physics_wall_rate

S = 1_000_000_000
MIN = 60 * S

DEEP = """\
hilnet: 1
name: deep
clock: {scale: 600, duration: 2h, compress: all}
nodes: {probe: {eid: ipn:1.0}, dsn: {eid: ipn:2.0}}
links:
  probe-dsn:
    ends: [probe, dsn]
    medium: ethernet
    rate: 100kbit/s
    delay: 20m
    jitter: 1m
    up: [10m-20m, 40m-1h30m]
    changes: [{at: 50m, delay: 21m, rate: 200kbit/s}]
traffic:
  - {name: images, from: probe, to: dsn, start: 1m, count: 2, size: 100KiB}
"""


# -- the rule -------------------------------------------------------------------------


def test_all_divides_durations_and_multiplies_rates_exactly() -> None:
    assert physics_wall_ns(20 * MIN, 600, "all") == 2 * S
    assert physics_wall_ns(1, 0.1, "all") == 10  # 0.1 is exactly 1/10
    assert physics_wall_rate(100_000, 600, "all") == 60_000_000
    assert physics_wall_rate(115_200, 0.1, "all") == 11_520
    assert physics_wall_rate(3, 1.5, "all") == 4  # 4.5: ties to even
    assert physics_wall_rate(1, 0.001, "all") == 1  # never below 1


def test_schedule_keeps_physics_as_written() -> None:
    assert physics_wall_ns(20 * MIN, 600, "schedule") == 20 * MIN
    assert physics_wall_rate(100_000, 600, "schedule") == 100_000


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(UnitError, match="'everything' is not one of schedule, all"):
        physics_wall_rate(1, 2, "everything")


# -- the model and the loader -------------------------------------------------------------


def test_in_wall_terms_converts_params_and_changes_once() -> None:
    sc = load_scenario_text(DEEP)
    assert sc.clock.compress == "all"
    wall = in_wall_terms(sc)
    link = wall.links[0]
    assert (link.forward.delay_ns, link.forward.jitter_ns, link.forward.rate_bps) == (2 * S, S // 10, 60_000_000)
    assert dict(link.changes[0].params) == {"delay_ns": 2_100_000_000, "rate_bps": 120_000_000}
    assert link.windows == sc.links[0].windows  # windows are the schedule: the clock scales them
    assert in_wall_terms(wall) is wall
    schedule = load_scenario_text(DEEP.replace("compress: all", "compress: schedule"))
    assert in_wall_terms(schedule) is schedule


def test_compress_defaults_to_schedule_and_a_wrong_value_is_placed() -> None:
    assert load_scenario_text(DEEP.replace(", compress: all", "")).clock.compress == "schedule"
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(DEEP.replace("compress: all", "compress: everything"), "deep.yaml")
    assert str(e.value).startswith("deep.yaml:3:45: clock.compress")
    assert "schedule" in str(e.value) and "all" in str(e.value)


def test_rates_no_backend_runs_are_refused_where_the_file_sets_them() -> None:
    relay = """\
  relay:
    ends: [probe, dsn]
    medium: serial
    dsn->probe: {baud: 9600}
traffic:"""
    text = DEEP.replace("scale: 600", "scale: 4000").replace("traffic:", relay)
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(text, "deep.yaml")
    lines = str(e.value).splitlines()
    assert [ln.split(": ", 1)[0] for ln in lines] == [
        "deep.yaml:13:43",  # the change's rate: 200kbit/s x 4000 = 800 Mbit/s
        "deep.yaml:15:5",  # the serial link's default baud, which probe->dsn runs at
        "deep.yaml:17:24",  # dsn->probe's own baud: 9600 x 4000
    ], lines
    assert lines[0].endswith(
        "link 'probe-dsn' change rate 200kbit/s runs at 800Mbit/s of wall time at scale 4000 with compress: all, "
        "above 600Mbit/s, the most the link engine forwards; expected clock.scale at most 3000 for this link "
        "(or compress: schedule, which keeps rates physical)"
    )
    assert "link 'relay' baud (the default, none given) 115200 runs at 460800000 baud" in lines[1]
    assert "above 3000000 baud, the fastest UART line a backend paces" in lines[1]
    assert "expected clock.scale at most 312.5 for this link" in lines[2]


def test_a_baud_above_the_uarts_is_refused_without_compression_too() -> None:
    text = (
        DEEP.replace("compress: all", "compress: schedule")
        .replace("medium: ethernet\n    rate: 100kbit/s", "medium: serial\n    baud: 4000000")
        .replace("rate: 200kbit/s", "baud: 9600")
    )
    with pytest.raises(ScenarioErrors, match=r":9:11: link 'probe-dsn' baud 4000000 is above 3000000 baud"):
        load_scenario_text(text)


def test_another_scale_on_the_command_line_is_checked_again(tmp_path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP)
    with pytest.raises(ScenarioErrors, match=r"deep.yaml:13:43: link 'probe-dsn' change rate 200kbit/s runs at"):
        prepare(str(path), RunOptions(scale=4000))
    scenario, plan = prepare(str(path), RunOptions())
    assert scenario.links[0].forward.delay_ns == 20 * MIN  # as written, for the reports
    assert plan.wall_links[0].wall_delay_ns == 2 * S


# -- the plan -------------------------------------------------------------------------------


def test_each_window_carries_what_it_carries_in_reality() -> None:
    compressed = compile_plan(load_scenario_text(DEEP))
    real = compile_plan(load_scenario_text(DEEP.replace("scale: 600, ", "scale: 1, ")))
    assert [c.capacity_bytes for c in compressed.capacities] == pytest.approx(
        [c.capacity_bytes for c in real.capacities], rel=1e-6
    )
    assert compressed.contacts == real.contacts  # the scenario-time contact plan is reality's
    assert {c.owlt_ns for c in compressed.wall_contacts} == {2 * S, 2_100_000_000}
    assert {c.owlt_ns for c in real.wall_contacts} == {20 * MIN, 21 * MIN}


def test_schedule_compression_keeps_the_old_meaning() -> None:
    plan = compile_plan(load_scenario_text(DEEP.replace("compress: all", "compress: schedule")))
    assert {c.owlt_ns for c in plan.wall_contacts} == {20 * MIN, 21 * MIN}
    assert plan.capacities[0].capacity_bytes < 20_000  # 1 s of a 100 kbit/s line


def test_the_plan_says_what_each_link_becomes() -> None:
    plan = compile_plan(load_scenario_text(DEEP))
    text = render_plan(plan)
    assert "links in wall terms (compress: all: delay and jitter / 600, rate and baud x 600; changes alike)" in text
    assert "probe-dsn  probe->dsn  20m ±1m  2s ±100ms   100kbit/s  60Mbit/s" in text
    js = plan_to_json(plan)
    assert js["compress"] == "all"
    assert js["wall_links"][0] == {
        "link": "probe-dsn",
        "from": "probe",
        "to": "dsn",
        "medium": "ethernet",
        "delay_ns": 20 * MIN,
        "wall_delay_ns": 2 * S,
        "jitter_ns": MIN,
        "wall_jitter_ns": S // 10,
        "rate_bps": 100_000,
        "wall_rate_bps": 60_000_000,
    }


# -- the emulator ----------------------------------------------------------------------------


def test_the_emulator_script_changes_to_compressed_values() -> None:
    sc = in_wall_terms(load_scenario_text(DEEP))
    fwd, _ = emulator_schedule(sc, sc.links[0], t0_ns=0)
    changes = [e for e in fwd if e.changes]
    assert [(e.at_ns, dict(e.changes)) for e in changes] == [
        (5 * S, {"delay_ns": 2_100_000_000, "rate_bps": 120_000_000})
    ]


def test_a_compressed_window_delivers_reality_s_frames_a_light_time_late() -> None:
    """10 scenario minutes at 100 kbit/s are one wall second at 60 Mbit/s: the same 7,324 frames."""
    text = DEEP.replace("    jitter: 1m\n", "").replace("    changes: [{at: 50m, delay: 21m, rate: 200kbit/s}]\n", "")
    sc = in_wall_terms(load_scenario_text(text))
    link = sc.links[0]
    fwd, _ = emulator_schedule(sc, link, t0_ns=0)
    config = dataclasses.replace(direction_config_from_params(link.forward, up=False), queue_units=32)
    d = Direction(config, Medium.ETHERNET, seed=1, schedule=fwd)
    frame = bytes(1000)
    arrivals = []
    now = 0
    while now <= 5 * S:  # the first window (1 s to 2 s of wall time) and its light time after it
        if now < 2 * S + 10**6:
            for _ in range(20):  # offered above the line's rate; the tail drops the rest
                d.accept(frame, now)
        arrivals += [now for _ in d.pop_due(now)]
        now += 1_000_000 if now < 2 * S else 100_000_000
    per_frame_s = (1000 + 24) * 8 / 100_000  # the physical line: 81.92 ms a frame
    assert len(arrivals) in (int(600 / per_frame_s), int(600 / per_frame_s) + 1)
    assert min(arrivals) >= 3 * S  # the window opens at 1 s; 20 minutes of light are 2 wall seconds


# -- hilnet link ------------------------------------------------------------------------------


def test_hilnet_link_options_compress_with_the_same_rule() -> None:
    from hilnet.commands.link import setup_from_options

    setup = setup_from_options(
        "udp://127.0.0.1:4000?peer=127.0.0.1:5000",
        "udp://127.0.0.1:4001?peer=127.0.0.1:5001",
        delay="20m",
        rate="256kbit/s",
        up="0s-10m,30m-1h",
        changes=["40m:delay=21m"],
        scale=600,
    )
    assert (setup.ab.delay_ns, setup.ab.rate_bps) == (2 * S, 153_600_000)
    assert [(e.at_ns, e.up, dict(e.changes)) for e in setup.schedule_ab] == [
        (S, False, {}),
        (3 * S, True, {}),
        (4 * S, None, {"delay_ns": 2_100_000_000}),
        (6 * S, False, {}),
    ]


def test_hilnet_link_refuses_a_compressed_rate_past_the_engine() -> None:
    from hilnet.commands.link import setup_from_options
    from hilnet.errors import InputError

    with pytest.raises(InputError, match=r"--rate 2Mbit/s runs at 1.2Gbit/s of wall time at scale 600"):
        setup_from_options("pty:///tmp/a", "pty:///tmp/b", rate="2Mbit/s", scale=600)


def test_only_a_session_cl_is_warned_of_windows_shorter_than_its_handshake() -> None:
    tcp = compile_plan(load_scenario_text(DEEP))
    assert any("less than 3 round trips" in w for w in tcp.warnings)
    ltp = compile_plan(load_scenario_text(DEEP.replace("medium: ethernet\n", "medium: ethernet\n    cl: ltp\n")))
    assert not any("round trips" in w for w in ltp.warnings)
