"""Computed windows for people (a table) and programs (JSON): what ``hilnet plan`` and ``hilnet geometry`` show."""

from __future__ import annotations

from typing import Any

from hilnet.scenario.epoch import format_utc
from hilnet.scenario.geometry.positions import LinkGeometry, Pass
from hilnet.units import format_duration

HEADERS = ["link", "window (scenario)", "UTC start", "length", "elevation start/peak/end", "range km", "light time"]


def pass_rows(geometry: tuple[tuple[str, LinkGeometry], ...], epoch_unix_ns: int | None) -> list[list[str]]:
    """One row per pass: link, window, UTC start, length, elevations (degrees), range and light-time spans."""
    rows = []
    for name, geo in geometry:
        for p in geo.passes:
            rows.append(
                [
                    name,
                    f"{format_duration(p.start_ns)}-{format_duration(p.end_ns)}",
                    format_utc(epoch_unix_ns + p.start_ns) if epoch_unix_ns is not None else "-",
                    format_duration(p.end_ns - p.start_ns),
                    "/".join(f"{e:.1f}" for e in p.elevation) if p.elevation else "- (space)",
                    f"{p.range_min_m / 1000:,.0f}-{p.range_max_m / 1000:,.0f}",
                    f"{_ms(p.light_min_ns)}-{_ms(p.light_max_ns)} ms",
                ]
            )
    return rows


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


def pass_json(p: Pass, epoch_unix_ns: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start_ns": p.start_ns,
        "end_ns": p.end_ns,
        "peak_ns": p.peak_ns,
        "range_min_m": round(p.range_min_m, 1),
        "range_max_m": round(p.range_max_m, 1),
        "light_time_min_ns": p.light_min_ns,
        "light_time_max_ns": p.light_max_ns,
    }
    if epoch_unix_ns is not None:
        out["start_utc"] = format_utc(epoch_unix_ns + p.start_ns)
        out["end_utc"] = format_utc(epoch_unix_ns + p.end_ns)
    if p.elevation is not None:
        out["elevation_deg"] = {
            "start": round(p.elevation[0], 2),
            "peak": round(p.elevation[1], 2),
            "end": round(p.elevation[2], 2),
        }
    return out


def geometry_json(geometry: tuple[tuple[str, LinkGeometry], ...], epoch_unix_ns: int | None) -> list[dict[str, Any]]:
    """One object per link: what was computed and its passes."""
    return [
        {
            "link": name,
            "line_of_sight": geo.line_of_sight,
            "light_time": geo.light_time,
            "step_ns": geo.step_ns,
            "station": geo.station,
            "passes": [pass_json(p, epoch_unix_ns) for p in geo.passes],
        }
        for name, geo in geometry
    ]
