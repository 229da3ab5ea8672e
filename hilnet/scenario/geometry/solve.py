"""Positions -> each link's windows (line of sight) and light-time delays, sampled every step. Pure.

A link's *margin* is positive while its ends see each other: the elevation above
the station's mask for a ground link, the lowest altitude of the line between
two spacecraft above the grazing altitude for a space link. It is sampled on a
grid of scenario times (``geometry-step``, every satellite propagated at once);
where it changes sign, the edge is found by regula falsi on exact propagations,
to well under a second. Light time is the range over c at each step inside a
window, held until the next step (at 7 km/s of range rate and a 10 s step the
held value is at most ~0.23 ms off).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from hilnet.scenario.geometry.ephemeris import Ephemeris, PropagationFailure
from hilnet.scenario.geometry.frames import Array, elevation_deg, grazing_altitude_m, up_vector
from hilnet.scenario.geometry.positions import LinkGeometry, Pass, Position, Station, light_time_ns
from hilnet.scenario.geometry.requests import LinkRequest, LinkSolution
from hilnet.scenario.model import Window

NS_PER_MS = 1_000_000
REFINE_ROUNDS = 4  # regula falsi rounds per edge: the margin is near linear over a step, so 4 reach ~1 ms


def solve(
    requests: Iterable[LinkRequest], positions: Mapping[str, Position], epoch_unix_ns: int, duration_ns: int
) -> tuple[dict[str, LinkSolution], list[PropagationFailure]]:
    """Each request's solution by link name, and the satellites SGP4 could not place."""
    eph = Ephemeris(positions, epoch_unix_ns)
    out: dict[str, LinkSolution] = {}
    grids: dict[int, tuple[Array, dict[str, Array]]] = {}
    for req in requests:
        if req.step_ns not in grids:
            times = np.append(np.arange(0, duration_ns, req.step_ns, dtype=np.float64), float(duration_ns))
            grids[req.step_ns] = (times, eph.grid(times))
        times, tracks = grids[req.step_ns]
        out[req.name] = _solve_link(req, eph, times, tracks, duration_ns)
    return out, eph.failures


class _Geometry:
    """The margin and range of one link, at grid samples or at any times."""

    def __init__(self, req: LinkRequest, eph: Ephemeris):
        self.req, self.eph = req, eph
        self.station: str | None = None
        self.mask = 0.0
        for end in (req.a, req.b):
            st = eph.nodes[end]
            if isinstance(st, Station):  # the loader refuses line of sight between two stations
                self.station, self.mask, self.up = end, st.min_elevation, up_vector(st.latitude, st.longitude)
                break

    def ends(self, pa: Array, pb: Array) -> tuple[Array, Array]:
        """(station or first end, other end)."""
        return (pb, pa) if self.station == self.req.b else (pa, pb)

    def elevation(self, pa: Array, pb: Array) -> Array | None:
        if self.station is None:
            return None
        st, other = self.ends(pa, pb)
        return elevation_deg(st[0], self.up, other)

    def margin(self, pa: Array, pb: Array) -> Array:
        el = self.elevation(pa, pb)
        if el is not None:
            return el - self.mask
        return (grazing_altitude_m(pa, pb) - self.req.grazing_m) / 1000.0  # km: a scale like degrees'

    def at(self, times: Array) -> tuple[Array, Array]:
        return self.eph.at(self.req.a, times), self.eph.at(self.req.b, times)

    def margin_at(self, times: Array) -> Array:
        return self.margin(*self.at(times))


def _solve_link(
    req: LinkRequest, eph: Ephemeris, times: Array, tracks: dict[str, Array], duration: int
) -> LinkSolution:
    geo = _Geometry(req, eph)
    pa, pb = tracks[req.a], tracks[req.b]
    if req.line_of_sight:
        windows = _windows(geo.margin(pa, pb), times, geo.margin_at, duration)
    else:
        windows = req.windows or (Window(0, duration),)
    ranges = np.linalg.norm(pa - pb, axis=-1)
    elevations = geo.elevation(pa, pb)
    passes = [_pass(w, times, ranges, elevations, geo) for w in windows]
    delays: list[tuple[int, int]] = []
    if req.light_time:
        for w, p in zip(windows, passes):
            inside = (times > w.start_ns) & (times < w.end_ns)
            steps = [(w.start_ns, _us(p[1]))] + [
                (int(t), _us(light_time_ns(r))) for t, r in zip(times[inside], ranges[inside])
            ]
            for step in steps:
                if not delays or delays[-1][1] != step[1]:
                    delays.append(step)
    geometry = LinkGeometry(
        step_ns=req.step_ns,
        line_of_sight=req.line_of_sight,
        light_time=req.light_time,
        passes=tuple(p[0] for p in passes),
        station=geo.station,
        grazing_m=req.grazing_m if geo.station is None else 0.0,
    )
    return LinkSolution(windows=windows if req.line_of_sight else req.windows, delays=tuple(delays), geometry=geometry)


def _windows(margin: Array, times: Array, margin_at: Callable[[Array], Array], duration: int) -> tuple[Window, ...]:
    """Spans where ``margin`` >= 0, edges refined between the samples that bracket them."""
    up = margin >= 0
    flips = np.flatnonzero(up[1:] != up[:-1])  # a sign change between sample i and i+1
    edges = _refine(times[flips], times[flips + 1], margin[flips], margin[flips + 1], margin_at)
    bounds = [0.0] if up[0] else []
    bounds += list(edges)
    if up[-1]:
        bounds.append(float(duration))
    out = []
    for start, end in zip(bounds[::2], bounds[1::2]):
        s, e = _ms(start), min(_ms(end), duration)
        if e > s:
            out.append(Window(s, e))
    return tuple(out)


def _refine(t0: Array, t1: Array, m0: Array, m1: Array, margin_at: Callable[[Array], Array]) -> Array:
    """Regula falsi on each bracket [t0, t1] whose margins m0, m1 differ in sign, all brackets at once."""
    if not len(t0):
        return t0
    t0, t1, m0, m1 = t0.copy(), t1.copy(), m0.copy(), m1.copy()
    tc = t0
    for _ in range(REFINE_ROUNDS):
        tc = t0 + (t1 - t0) * m0 / np.where(m0 != m1, m0 - m1, 1.0)
        mc = margin_at(tc)
        left = (mc >= 0) == (m0 >= 0)  # the edge lies after tc
        t0, m0 = np.where(left, tc, t0), np.where(left, mc, m0)
        t1, m1 = np.where(left, t1, tc), np.where(left, m1, mc)
    return tc


def _us(ns: int) -> int:
    """A delay to whole microseconds: the emulator's timing is no finer, and the plan reads better."""
    return round(ns / 1000) * 1000


def _ms(t: float) -> int:
    return int(round(t / NS_PER_MS)) * NS_PER_MS


def _pass(w: Window, times: Array, ranges: Array, elevations: Array | None, geo: _Geometry) -> tuple[Pass, int]:
    """The pass of window ``w`` and the light time at its start."""
    inside = (times > w.start_ns) & (times < w.end_ns)
    edge_times = np.array((w.start_ns, w.end_ns), dtype=np.float64)
    ea, eb = geo.at(edge_times)
    edge_ranges = np.linalg.norm(ea - eb, axis=-1)
    rs = np.concatenate((edge_ranges, ranges[inside]))
    ts = np.concatenate((edge_times, times[inside]))
    elevation = None
    edge_el = geo.elevation(ea, eb)
    if elevations is not None and edge_el is not None:
        els = np.concatenate((edge_el, elevations[inside]))
        k = int(np.argmax(els))
        peak_ns, peak = _vertex(ts, els, k, times, elevations)
        elevation = (float(edge_el[0]), peak, float(edge_el[1]))
    else:
        k = int(np.argmin(rs))
        peak_ns = int(ts[k])
    p = Pass(
        start_ns=w.start_ns,
        end_ns=w.end_ns,
        range_min_m=float(rs.min()),
        range_max_m=float(rs.max()),
        peak_ns=peak_ns,
        elevation=elevation,
    )
    return p, light_time_ns(float(edge_ranges[0]))


def _vertex(ts: Array, values: Array, k: int, times: Array, grid: Array) -> tuple[int, float]:
    """The top of a parabola through the grid samples around sample ``k`` of (ts, values), if it is one."""
    i = int(np.searchsorted(times, ts[k]))
    if k < 2 or not 0 < i < len(times) - 1 or times[i] != ts[k]:
        return int(ts[k]), float(values[k])
    y0, y1, y2 = grid[i - 1], grid[i], grid[i + 1]
    denom = y0 - 2 * y1 + y2
    if denom >= 0:
        return int(ts[k]), float(values[k])
    h = times[i + 1] - times[i]
    x = 0.5 * (y0 - y2) / denom  # in steps from sample i, within (-1, 1)
    return int(times[i] + x * h), float(y1 - 0.25 * (y0 - y2) * x)
