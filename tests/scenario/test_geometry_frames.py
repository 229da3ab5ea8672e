"""Earth frames, SGP4 wiring and windows against values worked out by hand or published."""

from __future__ import annotations

import math

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sgp4")

from hilnet.scenario.epoch import parse_utc  # noqa: E402
from hilnet.scenario.geometry.ephemeris import Ephemeris  # noqa: E402
from hilnet.scenario.geometry.frames import (  # noqa: E402
    GEO_RADIUS_M,
    WGS84_A_M,
    WGS84_F,
    ecef_to_geodetic,
    elevation_deg,
    geodetic_to_ecef,
    geostationary_ecef,
    gmst_rad,
    grazing_altitude_m,
    up_vector,
)
from hilnet.scenario.geometry.positions import Geostationary, Orbit, Station, light_time_ns  # noqa: E402
from hilnet.scenario.geometry.requests import LinkRequest  # noqa: E402
from hilnet.scenario.geometry.solve import solve  # noqa: E402
from hilnet.scenario.geometry.tle import tle_epoch_unix_ns  # noqa: E402

# Vallado et al., "Revisiting Spacetrack Report #3" (AIAA 2006-6753), test satellite 00005;
# the TEME position at 360 minutes is its published verification output (tcppver.out).
SAT5 = (
    "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753",
    "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667",
)
SAT5_TEME_360_KM = (-7154.03120202, -3783.17682504, -3536.19412294)
MIN_NS = 60_000_000_000


def test_geodetic_round_trip_and_known_points() -> None:
    assert np.allclose(geodetic_to_ecef(0, 0, 0), (WGS84_A_M, 0, 0))
    b = WGS84_A_M * (1 - WGS84_F)
    assert np.allclose(geodetic_to_ecef(90, 0, 0), (0, 0, b), atol=1e-6)
    for lat, lon, alt in ((32.5, -106.61, 1450.0), (-72.01, 2.53, 1270.0), (78.23, 15.39, 500.0), (0.0, 180.0, -20.0)):
        back = ecef_to_geodetic(geodetic_to_ecef(lat, lon, alt))
        assert back[0] == pytest.approx(lat, abs=1e-9) and back[2] == pytest.approx(alt, abs=1e-3)
        assert math.isclose((back[1] - lon + 180) % 360 - 180, 0, abs_tol=1e-9)


def test_geostationary_range_and_elevation_by_hand() -> None:
    # A station on the equator, 30 degrees of longitude from the satellite: the triangle
    # Earth centre - station - satellite gives range and elevation by the law of cosines.
    gamma = math.radians(30)
    station = geodetic_to_ecef(0, 0, 0)
    sat = geostationary_ecef(30.0)
    expected_range = math.sqrt(WGS84_A_M**2 + GEO_RADIUS_M**2 - 2 * WGS84_A_M * GEO_RADIUS_M * math.cos(gamma))
    expected_el = math.degrees(math.atan((math.cos(gamma) - WGS84_A_M / GEO_RADIUS_M) / math.sin(gamma)))
    assert np.linalg.norm(sat - station) == pytest.approx(expected_range, abs=1e-3)
    assert elevation_deg(station, up_vector(0, 0), sat[None, :])[0] == pytest.approx(expected_el, abs=1e-9)
    # Straight overhead: 35,786.035 km, 119.369 ms of light time.
    overhead = np.linalg.norm(geostationary_ecef(-41.0) - geodetic_to_ecef(0, -41.0, 0))
    assert overhead == pytest.approx(35_786_035, abs=1)
    assert light_time_ns(overhead) == 119_369_364


def test_gmst_at_j2000_and_a_day_later() -> None:
    # IAU 1982 GMST at 2000-01-01 12:00 UT1 is 18h41m50.54841s = 280.4606184 degrees.
    assert math.degrees(gmst_rad(np.array([2451545.0]), np.array([0.0]))[0]) == pytest.approx(280.4606184, abs=1e-6)
    # One solar day later the Earth has turned 360.98564736629 degrees.
    later = math.degrees(gmst_rad(np.array([2451546.0]), np.array([0.0]))[0])
    assert later == pytest.approx((280.4606184 + 360.98564736629) % 360, abs=1e-5)


def test_sgp4_verification_vector_lands_in_earth_fixed_frame() -> None:
    epoch = tle_epoch_unix_ns(SAT5[0])
    eph = Ephemeris({"sat5": Orbit(SAT5[0], SAT5[1], epoch)}, epoch)
    (ecef,) = eph.at("sat5", np.array([360.0 * MIN_NS]))
    teme = np.array(SAT5_TEME_360_KM) * 1000
    assert np.linalg.norm(ecef) == pytest.approx(np.linalg.norm(teme), abs=1.0)  # a rotation about the pole
    assert ecef[2] == pytest.approx(teme[2], abs=1.0)
    # ... by the sidereal angle of that instant (GMST from its J2000 value and the sidereal rate)
    jd = 2440587.5 + (epoch + 360 * MIN_NS) / 86_400e9
    theta = math.radians((280.46061837 + 360.98564736629 * (jd - 2451545.0)) % 360)
    turned = (math.atan2(teme[1], teme[0]) - math.atan2(ecef[1], ecef[0])) % (2 * math.pi)
    assert turned == pytest.approx(theta, abs=1e-6)


def test_grazing_altitude_of_a_line_through_and_past_the_earth() -> None:
    r = GEO_RADIUS_M
    p, q = np.array([[r, 0, 0], [r, 0, 0]]), np.array([[-r, 0, 0], [r, 1000.0, 0]])
    low = grazing_altitude_m(p, q)
    assert low[0] == pytest.approx(-WGS84_A_M)  # straight through the centre
    assert low[1] == pytest.approx(r - WGS84_A_M, rel=1e-9)  # the segment never comes closer than its ends


def test_opposite_geostationary_slots_never_see_each_other_and_neighbours_always_do() -> None:
    positions = {"a": Geostationary(0.0), "b": Geostationary(180.0), "c": Geostationary(130.0)}
    epoch = parse_utc("2024-05-06T20:00:00+00:00")
    assert epoch is not None
    reqs = [LinkRequest("ab", "a", "b", True, True, 10**10), LinkRequest("ac", "a", "c", True, True, 10**10)]
    solved, failures = solve(reqs, positions, epoch, 60 * MIN_NS)
    assert not failures
    assert solved["ab"].windows == ()
    (w,) = solved["ac"].windows
    assert (w.start_ns, w.end_ns) == (0, 60 * MIN_NS)
    chord = 2 * GEO_RADIUS_M * math.sin(math.radians(65))
    assert solved["ac"].delays == ((0, round(light_time_ns(chord) / 1000) * 1000),)


def test_station_windows_open_and_close_at_the_mask() -> None:
    l1 = "1 25544U 98067A   24127.82853009  .00015698  00000+0  27310-3 0  9995"
    l2 = "2 25544  51.6393 160.4574 0003580 140.6673 205.7250 15.50957674452123"
    epoch = parse_utc("2024-05-06T20:00:00+00:00")
    assert epoch is not None
    positions = {"iss": Orbit(l1, l2, tle_epoch_unix_ns(l1)), "wsc": Station(32.5, -106.61, 1450.0, 10.0)}
    solved, _ = solve([LinkRequest("l", "iss", "wsc", True, True, 10**10)], positions, epoch, 24 * 60 * MIN_NS)
    passes = solved["l"].geometry.passes
    assert len(passes) >= 3
    for p in passes:
        assert p.elevation is not None
        start, peak, end = p.elevation
        assert start == pytest.approx(10.0, abs=0.01) and end == pytest.approx(10.0, abs=0.01)
        assert peak > 10.0 and p.start_ns < p.peak_ns < p.end_ns
        assert 400_000 < p.range_min_m < p.range_max_m < 2_000_000  # ISS at ~420 km, seen above 10 degrees
    delays = solved["l"].delays
    assert [d for _, d in delays] and all(1_000_000 < d < 7_000_000 for _, d in delays)
    assert all(any(p.start_ns <= at < p.end_ns for p in passes) for at, _ in delays)  # changes only inside windows
