"""Scenarios whose windows and delays come from orbits, end to end on both virtual backends.

``scenarios/iss-tdrs-orbit.yaml``: the ISS on a TLE, TDRS East and West geostationary,
White Sands a station; the Zone of Exclusion (neither TDRS sees the ISS, ~16m43s to
~20m39s) comes from geometry and the tweet injected in it waits on the ISS.
``scenarios/leo-relay.yaml``: bundles from Svalbard ride a LEO satellite's store to Troll.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary

pytest.importorskip("sgp4")

from hilnet.report.timeline import plan_bars  # noqa: E402
from hilnet.scenario.load import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "scenarios" / "iss-tdrs-orbit.yaml"
LEO = ROOT / "scenarios" / "leo-relay.yaml"
MIN = 60_000_000_000


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_iss_story_from_orbits(tmp_path: Path, backend: str) -> None:
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(ISS, out, backend, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True and s["backend"] == backend
    scenario = load_scenario(ISS)
    e, w = scenario.link("iss-tdrs-e"), scenario.link("iss-tdrs-w")
    zoe = (e.windows[0].end_ns, w.windows[0].start_ns)
    # The link lanes of the timeline are the computed windows.
    assert [spans for _, _, spans, _ in plan_bars(e, scenario.clock.duration_ns)] == [
        [(x.start_ns, x.end_ns) for x in e.windows]
    ]
    assert (out / "timeline.png").stat().st_size > 10_000
    evs = events(out)
    # The emulator took iss-tdrs-e down at the computed edge and applied light time as it changed.
    downs = [
        x["t_ns"] for x in evs if x.get("src") == "link" and x.get("link") == "iss-tdrs-e" and x.get("event") == "down"
    ]
    assert any(abs(t - zoe[0]) < 2 * 10**9 * scenario.clock.scale for t in downs), (downs, zoe)
    delays = [
        x["changes"]["delay_ns"]
        for x in evs
        if x.get("src") == "link" and x.get("link") == "iss-tdrs-e" and x.get("event") == "change"
    ]
    assert len(delays) > 50 and 118_000_000 < min(delays) < max(delays) < 146_000_000
    # The tweet injected inside the Zone of Exclusion reached the ground only after TDRS West rose.
    bundles = {b["tag"]: b for b in s["bundles"]}
    (in_zoe,) = [b for b in bundles.values() if zoe[0] < b["injected_ns"] < zoe[1]]
    assert in_zoe["delivered_ns"] > zoe[1] and "tdrs-w" in in_zoe["path"]
    leaks.check(out)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_leo_constellation_carries_bundles_between_passes(tmp_path: Path, backend: str) -> None:
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(LEO, out, backend, timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True
    scenario = load_scenario(LEO)
    for b in s["bundles"]:
        sat = b["path"][1]
        up, down = scenario.link(f"{sat}-svalbard"), scenario.link(f"{sat}-troll")
        # No satellite sees both stations: the bundle waited in the satellite's store between passes.
        assert not any(u.start_ns < d.end_ns and d.start_ns < u.end_ns for u in up.windows for d in down.windows)
        assert b["delivered_ns"] - b["injected_ns"] > 20 * MIN
    leaks.check(out)
