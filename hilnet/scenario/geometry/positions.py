"""Where a node is (an orbit, a geostationary slot, a ground station) and what geometry found for a link.

Frozen values, no numbers crunched here: :mod:`hilnet.scenario.geometry.solve`
turns positions into windows and light time. Angles are degrees, lengths metres,
times ns (scenario time unless the name says unix).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Orbit:
    """A spacecraft on a two-line element set, propagated with SGP4."""

    line1: str
    line2: str
    epoch_unix_ns: int  # the TLE's epoch
    name: str = ""  # the satellite's name in a TLE file, if it came from one


@dataclass(frozen=True, slots=True)
class Geostationary:
    """A spacecraft fixed above the equator at ``longitude`` (east positive), 35,786 km up."""

    longitude: float


@dataclass(frozen=True, slots=True)
class Station:
    """A ground station on the WGS84 ellipsoid; it sees a spacecraft above ``min_elevation``."""

    latitude: float  # geodetic, north positive
    longitude: float  # east positive
    altitude_m: float  # above the ellipsoid
    min_elevation: float  # the elevation mask


Position = Orbit | Geostationary | Station


@dataclass(frozen=True, slots=True)
class Pass:
    """One window of a link as geometry saw it.

    ``elevation`` is (start, peak, end) in degrees for a link with a ground
    station end, None between two spacecraft; ``peak_ns`` is when the peak (or,
    in space, the closest approach) is. Ranges are metres.
    """

    start_ns: int
    end_ns: int
    range_min_m: float
    range_max_m: float
    peak_ns: int
    elevation: tuple[float, float, float] | None = None

    @property
    def light_min_ns(self) -> int:
        return light_time_ns(self.range_min_m)

    @property
    def light_max_ns(self) -> int:
        return light_time_ns(self.range_max_m)


@dataclass(frozen=True, slots=True)
class LinkGeometry:
    """What geometry computed for one link: its passes, and which of its values came from it."""

    step_ns: int  # sampling step in scenario time
    line_of_sight: bool  # the windows are computed (``up: line-of-sight``)
    light_time: bool  # the delay follows the range (``delay: light-time``)
    passes: tuple[Pass, ...]
    station: str | None = None  # the ground end, when the link has one
    grazing_m: float = 0.0  # for two spacecraft: lowest altitude the line may pass


C_M_PER_S = 299_792_458.0


def light_time_ns(range_m: float) -> int:
    """One-way light time over ``range_m`` metres in vacuum, ns."""
    return round(range_m / C_M_PER_S * 1e9)
