"""netem translation and the clocked applier, with a recording runner (tc never runs)."""

from __future__ import annotations

import pytest

from hilnet.clock import VirtualClock
from hilnet.errors import LinkError
from hilnet.link.netem import NETEM_MAX_DELAY_NS, NetemApplier, check_netem, netem_args, plan_link
from hilnet.link.shaper import DirectionConfig, Medium, ScheduleEvent

S = 1_000_000_000
MS = 1_000_000


def test_unimpaired_link_is_a_plain_netem_with_a_sized_limit():
    assert netem_args(DirectionConfig()) == ["limit", "1001"]


def test_delay_jitter_loss_rate_translate():
    args = netem_args(DirectionConfig(delay_ns=130 * MS, jitter_ns=1500 * 1000, loss=0.005, rate_bps=10_000_000))
    assert args[args.index("delay") :] == [
        "delay",
        "130ms",
        "1500us",
        "loss",
        "random",
        "0.5%",
        "rate",
        "10000000bit",
        "24",
    ]
    # 10 Mbit/s x 131.5 ms = 108 frames of 1524 B in flight, + the default queue, + 1
    assert args[:2] == ["limit", str(108 + 1000 + 1)]


def test_jitter_without_reorder_always_gets_a_rate_to_keep_order():
    args = netem_args(DirectionConfig(delay_ns=10 * MS, jitter_ns=MS), nic_rate_bps=10**9)
    assert "rate" in args and args[args.index("rate") + 1] == "1000000000bit"
    assert "rate" not in netem_args(DirectionConfig(delay_ns=10 * MS, jitter_ns=MS, reorder=True))


def test_gilbert_elliott_maps_to_gemodel():
    args = netem_args(DirectionConfig(gilbert=(0.01, 0.3, 0.001, 0.8)))
    i = args.index("gemodel")
    assert args[i : i + 5] == ["gemodel", "1%", "30%", "80%", "0.1%"]  # p r 1-h(bad) 1-k(good)


def test_ber_is_folded_into_loss_or_asked_as_corrupt():
    notes: list[str] = []
    args = netem_args(DirectionConfig(ber=1e-6), frame_bytes=1000, notes=notes)
    p = float(args[args.index("random") + 1].rstrip("%")) / 100
    assert p == pytest.approx(1 - (1 - 1e-6) ** (1004 * 8))
    assert notes and "per packet" in notes[0]
    args = netem_args(DirectionConfig(ber=1e-6), frame_bytes=1000, ber_mode="corrupt")
    assert "corrupt" in args and "loss" not in args


def test_gate_down_is_total_loss():
    args = netem_args(DirectionConfig(up=False, loss=0.1))
    assert args[args.index("loss") : args.index("loss") + 3] == ["loss", "random", "100%"]


def test_deep_space_delay_is_refused_with_a_pointer_to_the_user_space_engine():
    with pytest.raises(LinkError, match=r"274\.9 s.*user-space engine"):
        netem_args(DirectionConfig(delay_ns=22 * 60 * S))
    netem_args(DirectionConfig(delay_ns=NETEM_MAX_DELAY_NS))  # just fits
    with pytest.raises(LinkError, match="user-space engine"):
        netem_args(DirectionConfig(delay_ns=200 * S), max_delay_ns=100 * S)  # a 32-bit kernel's lower limit
    with pytest.raises(LinkError, match="serial"):
        netem_args(DirectionConfig(baud=9600), medium=Medium.SERIAL)


def test_plan_schedules_changes_and_ingress_through_ifb():
    t0 = 5 * S
    plan = plan_link(
        "eth1",
        DirectionConfig(delay_ns=120 * MS, rate_bps=10_000_000),
        [
            ScheduleEvent(t0, up=False),
            ScheduleEvent(t0 + 60 * S, up=True),
            ScheduleEvent(t0 + 60 * S, changes={"rate_bps": 2_000_000}),
        ],
        t0_ns=t0,
        ingress=DirectionConfig(delay_ns=130 * MS),
        end_ns=t0 + 100 * S,
    )
    setup = [" ".join(c.argv) for c in plan.setup]
    assert "ip link add ifb0 type ifb" in setup
    assert any("mirred egress redirect dev ifb0" in s for s in setup)
    assert setup[-2].startswith("tc qdisc add dev eth1 root handle 1: netem")
    assert setup[-1].startswith("tc qdisc add dev ifb0 root handle 1: netem")
    assert all(c.at_ns == t0 for c in plan.setup)
    # two events at t0+60s merge into one change carrying both
    assert [c.at_ns for c in plan.timed] == [t0, t0 + 60 * S]
    down, up = (" ".join(c.argv) for c in plan.timed)
    assert down.startswith("tc qdisc change dev eth1 root handle 1: netem") and "loss random 100%" in down
    assert "loss" not in up and "rate 2000000bit 24" in up
    assert [" ".join(c.argv) for c in plan.teardown] == [
        "tc qdisc del dev eth1 root",
        "tc qdisc del dev ifb0 root",
        "tc qdisc del dev eth1 ingress",
        "ip link del ifb0",
    ]


def test_applier_runs_each_command_at_its_instant():
    clock = VirtualClock(0)
    ran = []

    def runner(argv):
        ran.append((clock.now_ns(), tuple(argv)))
        return 0, ""

    plan = plan_link(
        "eth0", DirectionConfig(), [ScheduleEvent(3 * S, up=False), ScheduleEvent(7 * S, up=True)], t0_ns=S
    )
    applied = NetemApplier(clock, runner).run(plan.commands())
    assert [t for t, _ in ran] == [S, 3 * S, 7 * S]
    assert [a.applied_ns - a.command.at_ns for a in applied] == [0, 0, 0]


def test_applier_stops_on_a_failing_command():
    def runner(argv):
        return 2, "RTNETLINK answers: Operation not permitted"

    with pytest.raises(LinkError, match="not permitted"):
        NetemApplier(VirtualClock(), runner).run(plan_link("eth0", DirectionConfig()).commands())


def _probe(tc_result, modprobe_result=(1, "modprobe: FATAL: Module sch_netem not found")):
    calls = []

    def runner(argv):
        calls.append(list(argv))
        if argv[0] == "modprobe":
            return modprobe_result
        if argv[:3] == ["tc", "qdisc", "add"]:
            return tc_result
        return 0, ""

    return runner, calls


def test_probe_reports_a_kernel_without_netem():
    runner, _ = _probe((2, "Error: Specified qdisc kind is unknown."))
    with pytest.raises(LinkError, match="lacks sch_netem.*user-space engine will be used"):
        check_netem(runner)


def test_probe_reports_missing_privileges_and_cleans_up_on_success():
    runner, _ = _probe((2, "RTNETLINK answers: Operation not permitted"))
    with pytest.raises(LinkError, match="needs root"):
        check_netem(runner)
    runner, calls = _probe((0, ""), (0, ""))
    check_netem(runner)
    assert calls[-1] == ["tc", "qdisc", "del", "dev", "lo", "root"]


def test_probe_on_this_machine_raises_or_passes_but_never_crashes():
    try:
        check_netem()
    except LinkError as e:
        assert "user-space engine will be used" in str(e)
