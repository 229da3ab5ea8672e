"""Positions in scenarios: what the loader makes of them, and every bad input at its FILE:LINE:COL."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hilnet.errors import ScenarioErrors
from hilnet.scenario.geometry.tle import check_tle, checksum, tle_epoch_unix_ns, with_checksum
from hilnet.scenario.load import load_scenario, load_scenario_text
from hilnet.scenario.plan import compile_plan

ROOT = Path(__file__).resolve().parents[2]
L1 = "1 25544U 98067A   24127.82853009  .00015698  00000+0  27310-3 0  9995"
L2 = "2 25544  51.6393 160.4574 0003580 140.6673 205.7250 15.50957674452123"
MIN = 60_000_000_000

# A scenario whose pieces the cases below replace: {tle1} {lat} {mask} {eac} {epoch}.
BASE = """hilnet: 1
clock: {{scale: 60, duration: 1h{epoch}}}
nodes:
  iss:
    eid: ipn:1.0
    position:
      orbit:
        tle:
          - "{tle1}"
          - "{tle2}"
  wsc: {{eid: ipn:4.0, position: {{station: {{latitude: {lat}, longitude: -106.6, min-elevation: {mask}}}}}}}
  eac: {{eid: ipn:5.0{eac}}}
links:
  iss-wsc: {{ends: [iss, wsc], medium: ethernet, up: line-of-sight, delay: light-time}}
  wsc-eac: {{ends: [wsc, eac], medium: ethernet, delay: 80ms}}
"""
GOOD = dict(tle1=L1, tle2=L2, lat=32.5, mask=10, eac="", epoch=", epoch: 2024-05-06T20:00:00Z")

needs_orbits = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("sgp4", "numpy")),
    reason="the orbits extra (sgp4, numpy) is not installed",
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "s.yaml")
    return [str(e) for e in info.value.errors]


def test_tle_checksum_and_epoch() -> None:
    assert checksum(L1) == 5 and checksum(L2) == 3
    assert with_checksum(L1[:68]) == L1
    assert check_tle(L1, L2) == []
    # 2024 day 127.82853009 = 6 May 2024 (day 127) + 71,584.999776 s = 19:53:04.999776 UTC
    assert tle_epoch_unix_ns(L1) == 1_715_025_184_999_776_000


def test_bad_checksum_names_column_69() -> None:
    bad = L1[:68] + "4"
    assert errors_of(BASE.format(**{**GOOD, "tle1": bad})) == [
        "s.yaml:9:82: node 'iss' position orbit: TLE line 1 checksum is 4, but columns 1-68 sum to 5 (mod 10); "
        "expected a line copied whole (a changed digit changes the sum)"
    ]


def test_a_shifted_field_names_its_column() -> None:
    # An extra space before the inclination, the last column dropped: 69 columns still. The
    # inclination still reads as a number; the eccentricity, shifted onto a space, does not.
    shifted = L2[:8] + " " + L2[8:68]
    (msg,) = errors_of(BASE.format(**{**GOOD, "tle2": shifted}))
    assert msg == (
        "s.yaml:10:40: node 'iss' position orbit: TLE line 2 columns 27-33 (eccentricity (digits after an "
        "implied '0.')) read ' 000358'; expected digits"
    )
    (short,) = errors_of(BASE.format(**{**GOOD, "tle2": L2[:60]}))
    assert short.startswith("s.yaml:10:74: node 'iss' position orbit: TLE line 2 has 60 columns; expected 69")


def test_latitude_91_and_mask_95() -> None:
    assert errors_of(BASE.format(**{**GOOD, "lat": 91, "mask": 95})) == [
        "s.yaml:11:54: node 'wsc' position station latitude is 91; expected degrees from -90 to 90",
        "s.yaml:11:92: node 'wsc' position station min-elevation is 95; expected degrees from 0 to 90 (not included)",
    ]


def test_a_node_with_two_positions() -> None:
    two = ", position: {station: {latitude: 50.9, longitude: 7.1}, geostationary: {longitude: -41}}"
    assert errors_of(BASE.format(**{**GOOD, "eac": two})) == [
        "s.yaml:12:77: node 'eac' position has 2 kinds (station, geostationary); expected exactly one: a node is in one place"
    ]


def test_line_of_sight_to_a_node_without_position() -> None:
    text = BASE.format(**GOOD).replace(
        "wsc-eac: {ends: [wsc, eac], medium: ethernet, delay: 80ms}",
        "wsc-eac: {ends: [iss, eac], medium: ethernet, up: line-of-sight}",
    )
    assert errors_of(text) == [
        "s.yaml:15:53: link 'wsc-eac' up: line-of-sight: node 'eac' has no position; expected a position "
        "(orbit, geostationary or station) on both ends"
    ]


def test_geometry_needs_clock_epoch() -> None:
    assert errors_of(BASE.format(**{**GOOD, "epoch": ""})) == [
        "s.yaml:14:53: link 'iss-wsc' up: line-of-sight needs clock.epoch, the UTC time of scenario time 0; "
        "expected it in clock"
    ]


def test_ground_to_ground_line_of_sight_and_hand_delay_changes_are_refused() -> None:
    text = BASE.format(**{**GOOD, "eac": ", position: {station: {latitude: 50.9, longitude: 7.1}}"})
    text = text.replace(
        "wsc-eac: {ends: [wsc, eac], medium: ethernet, delay: 80ms}",
        "wsc-eac: {ends: [wsc, eac], medium: ethernet, up: line-of-sight}",
    )
    text = text.replace("delay: light-time}", "delay: light-time, changes: [{at: 5m, delay: 1ms}]}")
    assert errors_of(text) == [
        "s.yaml:14:53: link 'iss-wsc' up: line-of-sight: a change at 5m sets the delay, which light time sets every "
        "step; expected changes of other parameters",
        "s.yaml:15:53: link 'wsc-eac' up: line-of-sight: both ends are ground stations; expected a spacecraft at one end",
    ]


def test_tle_file_errors_point_into_the_file(tmp_path: Path) -> None:
    (tmp_path / "sats.tle").write_text(f"ISS (ZARYA)\n{L1}\n{L2[:68]}0\n")
    text = BASE.format(**GOOD).replace(
        f'tle:\n          - "{L1}"\n          - "{L2}"', "{tle-file: sats.tle, name: ISS (ZARYA)}"
    )
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(tmp_path / "s.yaml")
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'sats.tle'}:3:69: node 'iss' position orbit 'ISS (ZARYA)': TLE line 2 checksum is 0, but "
        "columns 1-68 sum to 3 (mod 10); expected a line copied whole (a changed digit changes the sum)"
    ]
    (tmp_path / "s.yaml").write_text(text.replace("name: ISS (ZARYA)", "name: ISS ZARYA"))
    with pytest.raises(ScenarioErrors) as info:
        load_scenario(tmp_path / "s.yaml")
    (msg,) = [str(e) for e in info.value.errors]
    assert "no satellite named 'ISS ZARYA' in sats.tle (did you mean 'ISS (ZARYA)'?)" in msg


@needs_orbits
def test_computed_windows_and_delays_are_ordinary_model_values() -> None:
    text = BASE.format(**GOOD).replace("duration: 1h,", "duration: 12h,")
    s = load_scenario_text(text, "s.yaml")
    link = s.link("iss-wsc")
    assert link.geometry is not None and link.geometry.station == "wsc"
    assert len(link.windows) >= 2 and all(0 <= w.start_ns < w.end_ns <= 720 * MIN for w in link.windows)
    assert [(p.start_ns, p.end_ns) for p in link.geometry.passes] == [(w.start_ns, w.end_ns) for w in link.windows]
    assert link.changes and all(set(c.params) == {"delay_ns"} for c in link.changes)
    assert 1_000_000 < link.forward.delay_ns == link.backward.delay_ns < 10_000_000
    plan = compile_plan(s)
    ups = [a for a in plan.actions if a.kind == "link-up" and a.subject == "iss-wsc"]
    assert [a.at_ns for a in ups] == [w.start_ns for w in link.windows]
    # The contact plan has one contact per pass and direction, with the pass's largest light time.
    mine = [c for c in plan.contacts if {c.frm, c.to} == {"iss", "wsc"}]
    assert len(mine) == 2 * len(link.windows)
    assert s.node("wsc").position is not None and s.node("eac").position is None


@needs_orbits
def test_an_old_tle_is_a_plan_warning() -> None:
    s = load_scenario_text(BASE.format(**{**GOOD, "epoch": ", epoch: 2024-06-01T00:00:00Z"}), "s.yaml")
    (warning,) = [w for w in compile_plan(s).warnings if "TLE" in w]
    assert warning.startswith("node iss: its TLE's epoch 2024-05-06T19:53:04Z is 25.2 days from clock.epoch")


def test_a_missing_sgp4_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith(("hilnet.scenario.geometry.solve", "hilnet.scenario.geometry.ephemeris")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sgp4", None)
    monkeypatch.setitem(sys.modules, "sgp4.api", None)
    assert errors_of(BASE.format(**GOOD)) == [
        "s.yaml:14:53: computing line of sight and light time needs the sgp4 package, which is not installed; "
        "expected it installed with: pip install 'hilnet[orbits]'"
    ]


def test_shipped_orbit_scenarios_load_with_their_windows() -> None:
    pytest.importorskip("sgp4")
    iss = load_scenario(ROOT / "scenarios" / "iss-tdrs-orbit.yaml")
    e, w = iss.link("iss-tdrs-e"), iss.link("iss-tdrs-w")
    # TDRS East loses the ISS, then nobody sees it (the Zone of Exclusion), then TDRS West does.
    assert e.windows[0].start_ns == 0 and 16 * MIN < e.windows[0].end_ns < 17 * MIN
    assert 20 * MIN < w.windows[0].start_ns < 21 * MIN
    assert not compile_plan(iss).warnings
    leo = load_scenario(ROOT / "scenarios" / "leo-relay.yaml")
    assert sum(1 for n in leo.nodes if n.position is not None) == 10
    assert not compile_plan(leo).warnings


def test_keys_geometry_owns_are_not_written_twice() -> None:
    text = (ROOT / "scenarios" / "iss-tdrs-orbit.yaml").read_text()
    direction = text.replace(
        "    tdrs-e->iss: {rate: 512kbit/s}\n", "    tdrs-e->iss: {rate: 512kbit/s, delay: 3ms}\n    jitter: 1ms\n", 1
    )
    assert errors_of(direction) == [
        "s.yaml:43:5: link 'iss-tdrs-e' tdrs-e->iss: delay is computed from light time for both directions; "
        "expected no delay here"
    ]  # and jitter with light time is fine
    misspelt = text.replace(
        "up: line-of-sight\n    delay: light-time\n\n  iss-tdrs-w",
        "up: line-of-site\n    geometry-step: 1ms\n    delay: light-time\n\n  iss-tdrs-w",
        1,
    )
    assert errors_of(misspelt) == [
        "s.yaml:45:9: link 'iss-tdrs-e' up is the text 'line-of-site'; expected a list of windows such as "
        "[0m-38m, 47m-85m] or line-of-sight",
        "s.yaml:46:20: link 'iss-tdrs-e' geometry-step 1ms is under 1s; expected a step such as 10s",
    ]


@needs_orbits
def test_a_satellite_that_decays_during_the_run_is_refused() -> None:
    # B* of 0.5 at ~190 km: SGP4 gives up within hours (its error 6, "decayed").
    l1 = with_checksum("1 99999U 24999A   24127.75000000  .00000000  00000+0  50000-1 0  9990")
    l2 = with_checksum("2 99999  51.6000 100.0000 0001000  90.0000 270.0000 16.20000000  1000")
    text = BASE.format(**{**GOOD, "tle1": l1, "tle2": l2}).replace("duration: 1h,", "duration: 12h,")
    (msg,) = errors_of(text)
    assert msg.startswith("s.yaml:7:7: node 'iss': SGP4 cannot place it from ")
    assert msg.endswith("of scenario time on (the orbit decayed); expected a TLE that stays in orbit through the run")
