"""Computing windows and light time from orbits: 24 h, 50 satellites, 5 ground stations, 10 s step.

Target (issue 15): under 5 s on this machine for the whole computation that loading such
a scenario does: SGP4 for every satellite at every step, TEME -> Earth-fixed, elevation
of every satellite from every station, windows with edges refined by regula falsi, the
passes' elevations and ranges, and a light-time delay change per step inside each window.

Figures, each measured in this run:

1. ``solve``: hilnet.scenario.geometry.solve on the 250 (satellite, station) links.
2. ``load``: the same as a scenario file through ``load_scenario_text``: YAML, TLE
   checks, solve, and the windows and delay changes built into the model's Links.
3. Baseline: the plain per-satellite, per-step loop a first version would write:
   ``Satrec.sgp4`` one instant at a time, the same frames and elevation in scalar Python,
   windows at the samples' sign changes, linearly interpolated. It is also the check
   that both find the same windows.

    python benchmarks/geometry.py [--satellites 50] [--stations 5] [--hours 24] [--step 10s] [--no-baseline]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import sgp4
from sgp4.api import Satrec

from hilnet.scenario.epoch import parse_utc
from hilnet.scenario.geometry.frames import GEO_RADIUS_M, JD_UNIX_EPOCH  # noqa: F401 - shown in the config line
from hilnet.scenario.geometry.positions import Orbit, Station
from hilnet.scenario.geometry.requests import LinkRequest
from hilnet.scenario.geometry.solve import solve
from hilnet.scenario.geometry.tle import tle_epoch_unix_ns, with_checksum
from hilnet.scenario.load import load_scenario_text
from hilnet.units import format_duration, parse_duration

EPOCH = "2024-05-06T20:00:00Z"
STATIONS = [  # name, latitude, longitude, altitude m, mask degrees
    ("wsc", 32.50, -106.61, 1450.0, 10.0),
    ("svalbard", 78.23, 15.39, 500.0, 5.0),
    ("troll", -72.01, 2.53, 1270.0, 5.0),
    ("kourou", 5.25, -52.80, 15.0, 5.0),
    ("canberra", -35.40, 148.98, 680.0, 10.0),
    ("weilheim", 47.88, 11.08, 660.0, 5.0),
    ("hartebeesthoek", -25.89, 27.69, 1540.0, 5.0),
]


def constellation(n: int) -> list[tuple[str, str, str]]:
    """``n`` satellites in planes of 10 at 550 km and 53 degrees (a Walker-like shell), epoch 2024-05-06 18:00."""
    out = []
    planes = max(1, math.ceil(n / 10))
    for i in range(n):
        plane, slot = divmod(i, 10)
        raan = 360.0 * plane / planes
        anomaly = (36.0 * slot + 7.0 * plane) % 360
        num = 91000 + i
        l1 = with_checksum(f"1 {num:05d}U 24901A   24127.75000000  .00001000  00000+0  10000-3 0  9990")
        l2 = with_checksum(f"2 {num:05d}  53.0000 {raan:8.4f} 0001200  90.0000 {anomaly:8.4f} 15.05000000  1000")
        out.append((f"sat-{i + 1}", l1, l2))
    return out


def scenario_text(
    sats: list[tuple[str, str, str]], stations: list[tuple[str, float, float, float, float]], hours: float, step: str
) -> str:
    lines = ["hilnet: 1", f"clock: {{scale: 60, duration: {hours:g}h, epoch: {EPOCH}}}", "nodes:"]
    for i, (name, l1, l2) in enumerate(sats):
        lines.append(f'  {name}: {{eid: ipn:{i + 1}.0, position: {{orbit: {{tle: ["{l1}", "{l2}"]}}}}}}')
    for j, (name, lat, lon, alt, mask) in enumerate(stations):
        lines.append(
            f"  {name}: {{eid: ipn:{1000 + j}.0, position: {{station: {{latitude: {lat}, longitude: {lon}, "
            f"altitude: {alt}m, min-elevation: {mask}}}}}}}"
        )
    lines.append("links:")
    for name, *_ in sats:
        for st, *_ in stations:
            lines.append(
                f"  {name}-{st}: {{ends: [{name}, {st}], medium: ethernet, up: line-of-sight, "
                f"delay: light-time, geometry-step: {step}}}"
            )
    return "\n".join(lines) + "\n"


def baseline(sats, stations, epoch_ns: int, duration_ns: int, step_ns: int) -> dict[str, list[tuple[float, float]]]:
    """Windows by the plain loop: one SGP4 call per satellite and instant, scalar maths."""
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    sites = []
    for name, lat, lon, alt, mask in stations:
        la, lo = math.radians(lat), math.radians(lon)
        n = a / math.sqrt(1 - e2 * math.sin(la) ** 2)
        pos = (
            (n + alt) * math.cos(la) * math.cos(lo),
            (n + alt) * math.cos(la) * math.sin(lo),
            (n * (1 - e2) + alt) * math.sin(la),
        )
        up = (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))
        sites.append((name, pos, up, mask))
    times = list(range(0, duration_ns, step_ns)) + [duration_ns]
    windows: dict[str, list[tuple[float, float]]] = {}
    for sat_name, l1, l2 in sats:
        sat = Satrec.twoline2rv(l1, l2)
        margins: dict[str, list[float]] = {s[0]: [] for s in sites}
        delays = 0
        for t in times:
            days, rest = divmod(epoch_ns + t, 86_400 * 10**9)
            jd, fr = JD_UNIX_EPOCH + days, rest / 86_400e9
            _e, r, _v = sat.sgp4(jd, fr)
            tu = ((jd - 2451545.0) + fr) / 36525.0
            g = math.radians(
                ((-6.2e-6 * tu**3 + 0.093104 * tu**2 + (876600 * 3600 + 8640184.812866) * tu + 67310.54841) / 240.0)
                % 360
            )
            x, y, z = (c * 1000 for c in r)
            xe, ye = math.cos(g) * x + math.sin(g) * y, -math.sin(g) * x + math.cos(g) * y
            for name, (px, py, pz), (ux, uy, uz), mask in sites:
                dx, dy, dz = xe - px, ye - py, z - pz
                dist = math.sqrt(dx * dx + dy * dy + dz * dz)
                el = math.degrees(math.asin((dx * ux + dy * uy + dz * uz) / dist))
                margins[name].append(el - mask)
                if el >= mask:
                    delays += 1  # a light-time change here: range / c
        for name, m in margins.items():
            spans, start = [], 0.0 if m[0] >= 0 else None
            for i in range(1, len(m)):
                if (m[i] >= 0) != (m[i - 1] >= 0):
                    edge = times[i - 1] + (times[i] - times[i - 1]) * m[i - 1] / (m[i - 1] - m[i])
                    if m[i] >= 0:
                        start = edge
                    else:
                        spans.append((start, edge))
                        start = None
            if start is not None:
                spans.append((start, float(duration_ns)))
            windows[f"{sat_name}-{name}"] = spans
    return windows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--satellites", type=int, default=50)
    ap.add_argument("--stations", type=int, default=5)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--step", default="10s")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    step_ns = parse_duration(args.step)
    duration_ns = int(args.hours * 3600 * 10**9)
    epoch_ns = parse_utc(EPOCH.replace("Z", "+00:00")) or 0
    sats = constellation(args.satellites)
    stations = STATIONS[: args.stations]
    steps = duration_ns // step_ns + 1
    print(
        f"configuration: {len(sats)} satellites x {len(stations)} stations = {len(sats) * len(stations)} links, "
        f"{args.hours:g} h at a {format_duration(step_ns)} step ({steps} instants); sgp4 {sgp4.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"
    )

    positions = {name: Orbit(l1, l2, tle_epoch_unix_ns(l1)) for name, l1, l2 in sats}
    positions.update({n: Station(lat, lon, alt, mask) for n, lat, lon, alt, mask in stations})
    requests = [LinkRequest(f"{s}-{g}", s, g, True, True, step_ns) for s, *_ in sats for g, *_ in stations]
    t0 = time.perf_counter()
    solved, failures = solve(requests, positions, epoch_ns, duration_ns)
    t_solve = time.perf_counter() - t0
    n_windows = sum(len(s.windows) for s in solved.values())
    n_delays = sum(len(s.delays) for s in solved.values())
    print(
        f"solve:    {t_solve:6.2f} s  {n_windows} windows, {n_delays} light-time steps, "
        f"{len(sats) * steps / t_solve:,.0f} satellite-instants/s, {len(failures)} SGP4 failures"
    )

    text = scenario_text(sats, stations, args.hours, args.step)
    t0 = time.perf_counter()
    scenario = load_scenario_text(text, "bench.yaml")
    t_load = time.perf_counter() - t0
    changes = sum(len(link.changes) for link in scenario.links)
    verdict = "under" if t_load < 5 else "OVER"
    print(
        f"load:     {t_load:6.2f} s  {len(text) // 1024} KiB of YAML -> {changes} delay changes in the model; target 5 s: {verdict}"
    )

    if args.no_baseline:
        return
    t0 = time.perf_counter()
    plain = baseline(sats, stations, epoch_ns, duration_ns, step_ns)
    t_base = time.perf_counter() - t0
    print(f"baseline: {t_base:6.2f} s  the per-satellite, per-step loop: solve is {t_base / t_solve:.0f}x faster")
    worst, mismatched = 0.0, 0
    for name, sol in solved.items():
        ours = [(w.start_ns, w.end_ns) for w in sol.windows]
        if len(ours) != len(plain[name]):
            mismatched += 1
            continue
        for (a, b), (c, d) in zip(ours, plain[name]):
            worst = max(worst, abs(a - c), abs(b - d))
    print(
        f"agreement: {mismatched} links with a different number of windows; edges within "
        f"{worst / 1e9:.2f} s of the baseline's linear interpolation (solve refines them on exact propagations)"
    )


if __name__ == "__main__":
    main()
