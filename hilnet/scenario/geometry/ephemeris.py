"""Earth-fixed positions of placed nodes at scenario times: SGP4 for orbits, fixed points otherwise.

Propagation uses the ``sgp4`` package (the C++ SGP4 of Vallado et al.), all
satellites and times at once through its ``SatrecArray`` so that the loop runs
in C, not Python; TEME -> Earth-fixed is :mod:`frames`' (see its accuracy note).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sgp4.api import Satrec, SatrecArray

from hilnet.scenario.geometry.frames import (
    JD_UNIX_EPOCH,
    Array,
    geodetic_to_ecef,
    geostationary_ecef,
    gmst_rad,
    teme_to_ecef,
)
from hilnet.scenario.geometry.positions import Geostationary, Orbit, Position, Station

NS_PER_DAY = 86_400 * 1_000_000_000

_SGP4_ERRORS = {
    1: "mean eccentricity out of range",
    2: "mean motion below 0",
    3: "perturbed eccentricity out of range",
    4: "semi-latus rectum below 0",
    6: "the orbit decayed",
}


@dataclass(frozen=True, slots=True)
class PropagationFailure:
    """SGP4 could not place ``node`` from scenario time ``at_ns`` on (its error, in words)."""

    node: str
    at_ns: int
    reason: str


def julian(epoch_unix_ns: int, times_ns: Array) -> tuple[Array, Array]:
    """(whole, fraction) Julian dates of scenario times; split so that float64 keeps microseconds."""
    days, rest = divmod(epoch_unix_ns, NS_PER_DAY)
    offset = rest / NS_PER_DAY + times_ns / NS_PER_DAY
    whole_days = np.floor(offset)
    return np.full_like(times_ns, JD_UNIX_EPOCH + days, dtype=np.float64) + whole_days, offset - whole_days


class Ephemeris:
    """Positions (Earth-fixed metres) of ``nodes`` at any scenario times, from ``epoch_unix_ns``."""

    def __init__(self, nodes: Mapping[str, Position], epoch_unix_ns: int):
        self.nodes = dict(nodes)
        self.epoch_unix_ns = epoch_unix_ns
        self._sats = {
            name: Satrec.twoline2rv(p.line1, p.line2) for name, p in self.nodes.items() if isinstance(p, Orbit)
        }
        self.failures: list[PropagationFailure] = []

    def fixed(self, name: str) -> Array | None:
        """A node's constant position, or None when it moves."""
        p = self.nodes[name]
        if isinstance(p, Station):
            return geodetic_to_ecef(p.latitude, p.longitude, p.altitude_m)
        if isinstance(p, Geostationary):
            return geostationary_ecef(p.longitude)
        return None

    def grid(self, times_ns: Array) -> dict[str, Array]:
        """Every node's positions ``(T, 3)`` at ``times_ns``; orbits propagated together."""
        out: dict[str, Array] = {}
        for name in self.nodes:
            at = self.fixed(name)
            if at is not None:
                out[name] = np.broadcast_to(at, (len(times_ns), 3))
        names = list(self._sats)
        if names:
            jd, fr = julian(self.epoch_unix_ns, times_ns)
            errors, r, _v = SatrecArray([self._sats[n] for n in names]).sgp4(jd, fr)
            ecef = teme_to_ecef(np.asarray(r, dtype=np.float64) * 1000.0, gmst_rad(jd, fr))
            for i, name in enumerate(names):
                self._note_failure(name, np.asarray(errors[i]), times_ns)
                out[name] = ecef[i]
        return out

    def at(self, name: str, times_ns: Array) -> Array:
        """One node's positions ``(T, 3)`` at ``times_ns`` (for refining a window's edges)."""
        at = self.fixed(name)
        if at is not None:
            return np.broadcast_to(at, (len(times_ns), 3))
        jd, fr = julian(self.epoch_unix_ns, times_ns)
        errors, r, _v = self._sats[name].sgp4_array(jd, fr)
        self._note_failure(name, np.asarray(errors), times_ns)
        return teme_to_ecef(np.asarray(r, dtype=np.float64) * 1000.0, gmst_rad(jd, fr))

    def _note_failure(self, name: str, errors: Array, times_ns: Array) -> None:
        bad = np.flatnonzero(errors)
        if len(bad) and not any(f.node == name for f in self.failures):
            code = int(errors[bad[0]])
            reason = _SGP4_ERRORS.get(code, f"SGP4 error {code}")
            self.failures.append(PropagationFailure(name, int(times_ns[bad[0]]), reason))
