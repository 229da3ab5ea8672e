"""Earth frames: TEME (SGP4's output) to Earth-fixed, geodetic <-> Earth-fixed, elevation. Pure numpy.

Accuracy. TEME -> Earth-fixed is one rotation about the pole by the Greenwich
mean sidereal time (IAU 1982, as Vallado's ``gstime``), taking UTC for UT1 and
leaving out polar motion. UT1 - UTC stays within 0.9 s, which turns the Earth by
at most 3.8 arcsec: under 0.13 km at the ground and 0.8 km at geostationary
distance; polar motion is ~15 m. Both are far below SGP4's own error (~1 km at
the TLE's epoch, growing by 1-3 km a day), so a finer chain (IAU 2006, EOP
tables) would not change a window. Stations sit on WGS84.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

WGS84_A_M = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
GEO_RADIUS_M = 42_164_172.0  # geostationary orbit radius: sidereal day, GM = 398600.4418 km^3/s^2
JD_UNIX_EPOCH = 2_440_587.5  # Julian date of 1970-01-01 00:00 UTC
JD_J2000 = 2_451_545.0


def gmst_rad(jd_whole: Array, jd_fraction: Array) -> Array:
    """Greenwich mean sidereal time (radians, 0..2pi) at Julian date ``jd_whole + jd_fraction`` (UT1)."""
    t = ((jd_whole - JD_J2000) + jd_fraction) / 36_525.0
    seconds = -6.2e-6 * t**3 + 0.093104 * t**2 + (876_600.0 * 3600 + 8_640_184.812866) * t + 67_310.54841
    return np.asarray(np.mod(np.deg2rad(seconds / 240.0), 2 * math.pi), dtype=np.float64)


def teme_to_ecef(r_teme: Array, gmst: Array) -> Array:
    """Rotate positions ``(..., T, 3)`` from TEME to Earth-fixed at sidereal angles ``gmst`` ``(T,)``."""
    c, s = np.cos(gmst), np.sin(gmst)
    x, y, z = r_teme[..., 0], r_teme[..., 1], r_teme[..., 2]
    return np.stack((c * x + s * y, -s * x + c * y, z), axis=-1)


def geodetic_to_ecef(latitude: float, longitude: float, altitude_m: float) -> Array:
    """Earth-fixed (x, y, z) metres of a point on WGS84 (degrees, metres above the ellipsoid)."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    n = WGS84_A_M / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    return np.array(
        (
            (n + altitude_m) * math.cos(lat) * math.cos(lon),
            (n + altitude_m) * math.cos(lat) * math.sin(lon),
            (n * (1 - WGS84_E2) + altitude_m) * math.sin(lat),
        )
    )


def ecef_to_geodetic(r: Array) -> tuple[float, float, float]:
    """(latitude, longitude in degrees, altitude in metres) of an Earth-fixed point (Bowring, iterated)."""
    x, y, z = (float(v) for v in r)
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - WGS84_E2))
    alt = 0.0
    for _ in range(6):  # converges to under a millimetre in 3 for any point above the Earth's centre region
        n = WGS84_A_M / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        alt = p / math.cos(lat) - n if abs(lat) < math.pi / 4 else z / math.sin(lat) - n * (1 - WGS84_E2)
        lat = math.atan2(z, p * (1 - WGS84_E2 * n / (n + alt)))
    return math.degrees(lat), math.degrees(lon), alt


def geostationary_ecef(longitude: float) -> Array:
    """Earth-fixed position of a geostationary slot at ``longitude`` degrees east."""
    lon = math.radians(longitude)
    return np.array((GEO_RADIUS_M * math.cos(lon), GEO_RADIUS_M * math.sin(lon), 0.0))


def up_vector(latitude: float, longitude: float) -> Array:
    """The local vertical (ellipsoid normal) at a geodetic point, unit length."""
    lat, lon = math.radians(latitude), math.radians(longitude)
    return np.array((math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)))


def elevation_deg(station: Array, up: Array, target: Array) -> Array:
    """Elevation (degrees) of ``target`` ``(T, 3)`` seen from ``station`` with local vertical ``up``."""
    d = target - station
    dist = np.linalg.norm(d, axis=-1)
    return np.asarray(np.degrees(np.arcsin(np.clip((d @ up) / dist, -1.0, 1.0))), dtype=np.float64)


def grazing_altitude_m(p: Array, q: Array) -> Array:
    """Lowest altitude above a sphere of WGS84's equatorial radius of the segments ``p[i]``-``q[i]``.

    A sphere, not the ellipsoid: at most 21 km too strict over the poles, which
    a grazing margin of 100 km (the default) swallows.
    """
    d = q - p
    dd = np.einsum("...i,...i->...", d, d)
    t = np.clip(-np.einsum("...i,...i->...", p, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    closest = p + t[..., None] * d
    return np.asarray(np.linalg.norm(closest, axis=-1) - WGS84_A_M, dtype=np.float64)
