"""hilnet's geometry against an independent reference, Skyfield, over 24 hours.

Skyfield shares only SGP4 itself with hilnet: its TEME -> ITRS chain (IAU 2000A
nutation, UT1 from its built-in tables), its WGS84 station, its topocentric
elevation and its rise/set search are its own. The issue's bar: range within
1 km and light time within 3.4 us at every step, window edges within 2 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sgp4")
skyfield_api = pytest.importorskip("skyfield.api")

from hilnet.scenario.load import load_scenario_text  # noqa: E402

ISS = (
    "1 25544U 98067A   24127.82853009  .00015698  00000+0  27310-3 0  9995",
    "2 25544  51.6393 160.4574 0003580 140.6673 205.7250 15.50957674452123",
)
EPOCH = datetime(2024, 5, 6, 20, 0, tzinfo=UTC)
STATIONS = {  # name: (latitude, longitude, altitude m, mask degrees)
    "wsc": (32.50, -106.61, 1450.0, 10.0),
    "fairbanks": (64.86, -147.85, 200.0, 5.0),  # near the ISS's northern reach: short, low passes
    "kourou": (5.25, -52.80, 15.0, 0.0),
}
NS = 1_000_000_000
C = 299_792_458.0


def _scenario() -> str:
    nodes = "\n".join(
        f"  {n}: {{eid: ipn:{i + 2}.0, position: {{station: {{latitude: {lat}, longitude: {lon}, "
        f"altitude: {alt}m, min-elevation: {mask}}}}}}}"
        for i, (n, (lat, lon, alt, mask)) in enumerate(STATIONS.items())
    )
    links = "\n".join(
        f"  iss-{n}: {{ends: [iss, {n}], medium: ethernet, up: line-of-sight, delay: light-time}}" for n in STATIONS
    )
    return f"""
hilnet: 1
clock: {{scale: 60, duration: 24h, epoch: 2024-05-06T20:00:00Z}}
nodes:
  iss:
    eid: ipn:1.0
    position: {{orbit: {{tle: ["{ISS[0]}", "{ISS[1]}"]}}}}
{nodes}
links:
{links}
"""


@pytest.fixture(scope="module")
def reference() -> tuple[object, object, object]:
    ts = skyfield_api.load.timescale(builtin=True)
    return ts, skyfield_api.EarthSatellite(ISS[0], ISS[1], ts=ts), load_scenario_text(_scenario(), "ref.yaml")


@pytest.mark.parametrize("name", list(STATIONS))
def test_window_edges_within_two_seconds(reference: tuple, name: str) -> None:
    ts, sat, scenario = reference
    lat, lon, alt, mask = STATIONS[name]
    topos = skyfield_api.wgs84.latlon(lat, lon, elevation_m=alt)
    t0, t1 = ts.from_datetime(EPOCH), ts.from_datetime(EPOCH + timedelta(hours=24))
    times, kinds = sat.find_events(topos, t0, t1, altitude_degrees=mask)
    edges = [
        (int(round((t.utc_datetime() - EPOCH).total_seconds() * NS)), int(k)) for t, k in zip(times, kinds) if k != 1
    ]
    rises = [t for t, k in edges if k == 0]
    sets = [t for t, k in edges if k == 2]
    link = scenario.link(f"iss-{name}")
    ours = [(w.start_ns, w.end_ns) for w in link.windows]
    assert len(ours) == len(rises) == len(sets) and len(ours) >= 2, (ours, edges)
    worst = max(max(abs(s - r), abs(e - f)) for (s, e), r, f in zip(ours, rises, sets))
    assert worst < 2 * NS, f"window edges differ from Skyfield's by up to {worst / NS:.3f} s"


@pytest.mark.parametrize("name", list(STATIONS))
def test_range_and_light_time_within_1_km_and_3_4_us(reference: tuple, name: str) -> None:
    ts, sat, scenario = reference
    lat, lon, alt, _mask = STATIONS[name]
    topos = skyfield_api.wgs84.latlon(lat, lon, elevation_m=alt)
    link = scenario.link(f"iss-{name}")
    changes = [(c.at_ns, c.params["delay_ns"]) for c in link.changes]
    assert len(changes) > 50
    seconds = np.array([at / NS for at, _ in changes])
    t = ts.utc(2024, 5, 6, 20, 0, seconds)
    ref_m = (sat - topos).at(t).distance().m
    ours_ns = np.array([d for _, d in changes], dtype=np.float64)
    ref_ns = ref_m / C * 1e9
    # The delays are whole microseconds: allow that rounding on top of the bar.
    assert np.max(np.abs(ours_ns - ref_ns)) < 3_400 + 500
    # And each pass's longest range, at its edges, against Skyfield's at the same instants.
    for p in link.geometry.passes:
        edges = ts.utc(2024, 5, 6, 20, 0, np.array([p.start_ns, p.end_ns]) / NS)
        assert abs(max((sat - topos).at(edges).distance().m) - p.range_max_m) < 1_000


def test_report_the_worst_differences(reference: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a bar of its own: prints how close the edges came, for the record (pytest -s)."""
    ts, sat, scenario = reference
    for name, (lat, lon, alt, mask) in STATIONS.items():
        topos = skyfield_api.wgs84.latlon(lat, lon, elevation_m=alt)
        times, kinds = sat.find_events(
            topos, ts.from_datetime(EPOCH), ts.from_datetime(EPOCH + timedelta(hours=24)), altitude_degrees=mask
        )
        ref = [(t.utc_datetime() - EPOCH).total_seconds() for t, k in zip(times, kinds) if k != 1]
        ours = [x / NS for w in scenario.link(f"iss-{name}").windows for x in (w.start_ns, w.end_ns)]
        worst = max(abs(a - b) for a, b in zip(ours, ref))
        print(f"{name}: {len(ours) // 2} passes, edges within {worst:.3f} s of Skyfield's")
        assert worst < 2


def test_space_link_light_time_against_skyfield() -> None:
    """ISS to a geostationary relay: the light time of every step within 3.4 us (plus the whole-us rounding)."""
    ts = skyfield_api.load.timescale(builtin=True)
    sat = skyfield_api.EarthSatellite(ISS[0], ISS[1], ts=ts)
    geo = skyfield_api.wgs84.latlon(0.0, -41.0, elevation_m=42_164_172.0 - 6_378_137.0)  # on the equator: exact
    scenario = load_scenario_text(
        f"""
hilnet: 1
clock: {{scale: 60, duration: 24h, epoch: 2024-05-06T20:00:00Z}}
nodes:
  iss: {{eid: ipn:1.0, position: {{orbit: {{tle: ["{ISS[0]}", "{ISS[1]}"]}}}}}}
  tdrs: {{eid: ipn:2.0, position: {{geostationary: {{longitude: -41.0}}}}}}
links:
  l: {{ends: [iss, tdrs], medium: ethernet, up: line-of-sight, delay: light-time}}
""",
        "space.yaml",
    )
    link = scenario.link("l")
    changes = [(c.at_ns, c.params["delay_ns"]) for c in link.changes]
    assert len(changes) > 1000
    t = ts.utc(2024, 5, 6, 20, 0, np.array([at / NS for at, _ in changes]))
    ref_ns = (sat - geo).at(t).distance().m / C * 1e9
    assert np.max(np.abs(np.array([d for _, d in changes]) - ref_ns)) < 3_400 + 500


def test_space_link_edges_within_two_seconds_of_skyfield_positions() -> None:
    """Where the ISS - TDRS line grazes 100 km: Skyfield's Earth-fixed positions 2 s either side disagree in sign."""
    from skyfield.framelib import itrs

    ts = skyfield_api.load.timescale(builtin=True)
    sat = skyfield_api.EarthSatellite(ISS[0], ISS[1], ts=ts)
    scenario = load_scenario_text(
        f"""
hilnet: 1
clock: {{scale: 60, duration: 24h, epoch: 2024-05-06T20:00:00Z}}
nodes:
  iss: {{eid: ipn:1.0, position: {{orbit: {{tle: ["{ISS[0]}", "{ISS[1]}"]}}}}}}
  tdrs: {{eid: ipn:2.0, position: {{geostationary: {{longitude: -41.0}}}}}}
links:
  l: {{ends: [iss, tdrs], medium: ethernet, up: line-of-sight}}
""",
        "space.yaml",
    )
    lon = np.radians(-41.0)
    geo = np.array([42_164_172.0 * np.cos(lon), 42_164_172.0 * np.sin(lon), 0.0])

    def grazing_km(seconds: np.ndarray) -> np.ndarray:
        p = sat.at(ts.utc(2024, 5, 6, 20, 0, seconds)).frame_xyz(itrs).m.T
        d = geo - p
        t = np.clip(-np.einsum("ij,ij->i", p, d) / np.einsum("ij,ij->i", d, d), 0, 1)
        return (np.linalg.norm(p + t[:, None] * d, axis=1) - 6_378_137.0) / 1000 - 100

    edges = [x / NS for w in scenario.link("l").windows for x in (w.start_ns, w.end_ns) if 0 < x < 24 * 3600 * NS]
    assert len(edges) > 20
    before, after = grazing_km(np.array(edges) - 2.0), grazing_km(np.array(edges) + 2.0)
    assert np.all(np.sign(before) != np.sign(after)), [e for e, b, a in zip(edges, before, after) if b * a > 0]
