"""Warnings about positions that are valid but doubtful: a TLE far from the scenario's epoch (pure)."""

from __future__ import annotations

from hilnet.scenario.epoch import format_utc
from hilnet.scenario.geometry.positions import Orbit
from hilnet.scenario.model import Scenario

NS_PER_DAY = 86_400 * 1_000_000_000
STALE_DAYS = 14  # SGP4 from a TLE loses ~1-3 km a day; after two weeks windows can be off by tens of seconds


def tle_age_warnings(scenario: Scenario) -> list[str]:
    """One warning per orbit whose TLE epoch is more than 14 days from ``clock.epoch``."""
    epoch = scenario.clock.epoch_unix_ns
    out = []
    for node in scenario.nodes:
        if not isinstance(node.position, Orbit) or epoch is None:
            continue
        days = abs(node.position.epoch_unix_ns - epoch) / NS_PER_DAY
        if days > STALE_DAYS:
            out.append(
                f"node {node.name}: its TLE's epoch {format_utc(node.position.epoch_unix_ns)} is {days:.1f} days "
                f"from clock.epoch {format_utc(epoch)}; SGP4's error grows by 1-3 km a day from the epoch, so "
                f"windows may be off by tens of seconds (use a TLE within {STALE_DAYS} days)"
            )
    return out
