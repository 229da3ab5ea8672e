"""Scenario model -> shaper configs and engine-clock schedules."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from hilnet.errors import LinkError
from hilnet.link.params import direction_config_from_params, medium_of, schedule_for_link, up_at_start
from hilnet.link.shaper import Direction, DirectionConfig, Medium
from hilnet.scenario.model import Change, DirectionParams, GilbertElliott, Link, Window

S = 1_000_000_000
MIN = 60 * S


def _link(**kw) -> Link:
    base = dict(
        name="iss-tdrs",
        a="iss",
        b="tdrs",
        medium="serial",
        forward=DirectionParams(delay_ns=120_000_000, baud=115_200, bits_per_byte=10, ber=1e-6),
        backward=DirectionParams(delay_ns=120_000_000, baud=9600, bits_per_byte=10),
    )
    base.update(kw)
    return Link(**base)


def test_params_become_a_config():
    p = DirectionParams(
        delay_ns=5, jitter_ns=2, rate_bps=10_000_000, loss=0.01, ber=1e-7, queue_bytes=3000, queue_units=7, reorder=True
    )
    assert direction_config_from_params(p) == DirectionConfig(
        delay_ns=5,
        jitter_ns=2,
        reorder=True,
        rate_bps=10_000_000,
        bits_per_byte=10,
        loss=0.01,
        ber=1e-7,
        queue_bytes=3000,
        queue_units=7,
    )
    ge = direction_config_from_params(DirectionParams(loss_model=GilbertElliott(p=0.1, r=0.5)), up=False)
    assert ge.gilbert == (0.1, 0.5, 0.0, 1.0) and not ge.up
    serial = direction_config_from_params(DirectionParams(baud=9600, bits_per_byte=11))
    assert serial.line_rate_bps() == 9600 and serial.bits_per_byte == 11


def test_windows_become_gate_events_on_the_wall_clock():
    link = _link(windows=(Window(0, 38 * MIN), Window(47 * MIN, 85 * MIN)))
    fwd, bwd = schedule_for_link(link, scale=60, t0_ns=1000)
    assert [(e.at_ns, e.up) for e in fwd] == [
        (1000, True),
        (1000 + 38 * S, False),
        (1000 + 47 * S, True),
        (1000 + 85 * S, False),
    ]
    assert [(e.at_ns, e.up) for e in bwd] == [(e.at_ns, e.up) for e in fwd]


def test_link_down_at_start_and_touching_windows():
    link = _link(windows=(Window(10 * MIN, 20 * MIN), Window(20 * MIN, 30 * MIN)))
    assert not up_at_start(link)
    fwd, _ = schedule_for_link(link, scale=1, t0_ns=0)
    assert [(e.at_ns, e.up) for e in fwd] == [(0, False), (10 * MIN, True), (30 * MIN, False)]
    assert up_at_start(_link())
    assert [(e.at_ns, e.up) for e in schedule_for_link(_link(), 1, 0)[0]] == [(0, True)]


def test_changes_go_to_their_direction_scaled_exactly():
    link = _link(
        changes=(
            Change(40 * MIN, "both", MappingProxyType({"delay_ns": 250_000_000})),
            Change(41 * MIN, "backward", MappingProxyType({"baud": 4800, "loss_model": GilbertElliott(0.1, 0.2)})),
        )
    )
    fwd, bwd = schedule_for_link(link, scale=3, t0_ns=0)
    assert [(e.at_ns, dict(e.changes)) for e in fwd if e.changes] == [(800 * S, {"delay_ns": 250_000_000})]
    assert [(e.at_ns, dict(e.changes)) for e in bwd if e.changes] == [
        (800 * S, {"delay_ns": 250_000_000}),
        (820 * S, {"baud": 4800, "gilbert": (0.1, 0.2, 0.0, 1.0)}),
    ]
    # a third of a ns is rounded, never drifts through floats
    odd, _ = schedule_for_link(_link(changes=(Change(10, "both", MappingProxyType({"ber": 0.0})),)), 3, 0)
    assert [e.at_ns for e in odd if e.changes] == [3]


def test_a_schedule_drives_a_direction():
    link = _link(medium="ethernet", forward=DirectionParams(rate_bps=10_000_000), windows=(Window(MIN, 2 * MIN),))
    fwd, _ = schedule_for_link(link, scale=60, t0_ns=0)
    d = Direction(direction_config_from_params(link.forward), medium_of(link), seed=1, schedule=fwd)
    d.accept(b"early", 0)
    d.accept(b"inside", S + 1)
    assert [u.data for u in d.pop_due(5 * S)] == [b"inside"]
    assert d.stats.drops["down"] == 1
    assert medium_of(link) is Medium.ETHERNET


def test_a_change_a_link_cannot_apply_is_refused():
    link = _link(changes=(Change(0, "both", MappingProxyType({"colour": "red"})),))
    with pytest.raises(LinkError, match="colour"):
        schedule_for_link(link, 1, 0)
