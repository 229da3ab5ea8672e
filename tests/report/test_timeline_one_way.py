"""The timeline draws a link with one-way windows as two half lanes, one per direction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from report_synth import synth_events

from hilnet.controller.checks import check_run
from hilnet.report.timeline import matplotlib_available, plan_bars
from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000_000_000


def test_one_way_link_has_a_bar_per_direction() -> None:
    s = load_scenario(ROOT / "scenarios" / "iss-one-way.yaml")
    link = s.link("iss-tdrs-e")
    bars = plan_bars(link, s.clock.duration_ns)
    assert [(label, [(a // MIN, b // MIN) for a, b in spans]) for _, _, spans, label in bars] == [
        ("iss->tdrs-e", [(0, 12), (15, 20)]),
        ("tdrs-e->iss", [(8, 12), (15, 20)]),
    ]
    upper, lower = bars
    assert lower[0] + lower[1] <= upper[0]  # apart, a->b above b->a
    ((_, _, spans, label),) = plan_bars(replace(link, windows=(), directed=None), s.clock.duration_ns)
    assert label is None and spans == [(0, s.clock.duration_ns)]  # an ordinary link: one bar


@pytest.mark.skipif(not matplotlib_available(), reason="matplotlib (hilnet[controller]) is not installed")
def test_the_figure_draws() -> None:
    from hilnet.report.timeline import draw_timeline

    s = load_scenario(ROOT / "scenarios" / "iss-one-way.yaml")
    plan = compile_plan(s)
    events = synth_events(s, plan)
    png = draw_timeline(s, events, check_run(s, plan, events))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
