"""Reading a node's ``position:``: an orbit (a TLE, inline or from a file), a geostationary slot, a station.

Every TLE is checked column by column (:mod:`hilnet.scenario.geometry.tle`) and
a problem is reported at the file, line and column of the bad character, in the
scenario or in the TLE file it names.
"""

from __future__ import annotations

import os
from pathlib import Path

from yaml.nodes import Node, ScalarNode

from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.geometry.positions import Geostationary, Orbit, Position, Station
from hilnet.scenario.geometry.tle import check_tle, read_tle_file, tle_epoch_unix_ns, tle_names
from hilnet.scenario.load_base import BuilderBase
from hilnet.scenario.reader import did_you_mean
from hilnet.scenario.yamltree import read_file

KINDS = ("orbit", "geostationary", "station")
EXAMPLE = "{orbit: {tle: [LINE1, LINE2]}}, {geostationary: {longitude: -41}} or {station: {latitude: 32.5, longitude: -106.6}}"
DEFAULT_MIN_ELEVATION = 10.0  # degrees: a usual mask for an S-band station clear of terrain


class PositionBuilder(BuilderBase):
    def __init__(self, filename: str):
        super().__init__(filename)
        self.positions: dict[str, Position] = {}  # node name -> where it is, for nodes that say
        self.position_nodes: dict[str, Node] = {}  # node name -> its position's YAML node (valid or not)

    def _position(self, node: Node, name: str) -> None:
        """Read node ``name``'s ``position:`` into ``self.positions`` (or report why not)."""
        what = f"node {name!r} position"
        self.position_nodes[name] = node  # declared, even when wrong: links then blame it, not its absence
        m = self.r.mapping(node, what, KINDS)
        if m is None:
            return
        if len(m) != 1:
            kinds = list(m)
            if len(kinds) > 1:
                self.r.error(
                    m[kinds[1]][0],
                    f"{what} has {len(kinds)} kinds ({', '.join(kinds)}); expected exactly one: a node is in one place",
                )
            else:
                self.r.error(node, f"{what} is empty; expected one of {EXAMPLE}")
            return
        kind, (_k, value) = next(iter(m.items()))
        where: Position | None
        if kind == "orbit":
            where = self._orbit(value, f"{what} orbit")
        elif kind == "geostationary":
            g = self.r.mapping(value, f"{what} geostationary", ("longitude",), required=("longitude",))
            lon = self._degrees(g["longitude"][1], f"{what} longitude", -180, 180) if g and "longitude" in g else None
            where = Geostationary(lon) if lon is not None else None
        else:
            where = self._station(value, f"{what} station")
        if where is not None:
            self.positions[name] = where

    def _station(self, node: Node, what: str) -> Station | None:
        keys = ("latitude", "longitude", "altitude", "min-elevation")
        m = self.r.mapping(node, what, keys, required=("latitude", "longitude"))
        if m is None or "latitude" not in m or "longitude" not in m:
            return None
        lat = self._degrees(m["latitude"][1], f"{what} latitude", -90, 90)
        lon = self._degrees(m["longitude"][1], f"{what} longitude", -180, 180)
        alt = self._length(m["altitude"][1], f"{what} altitude", -500.0) if "altitude" in m else 0.0
        mask: float | None = DEFAULT_MIN_ELEVATION
        if "min-elevation" in m:
            mask = self._degrees(m["min-elevation"][1], f"{what} min-elevation", 0, 90, open_top=True)
        if lat is None or lon is None or alt is None or mask is None:
            return None
        return Station(latitude=lat, longitude=lon, altitude_m=alt, min_elevation=mask)

    def _degrees(self, node: Node, what: str, lo: float, hi: float, open_top: bool = False) -> float | None:
        expected = f"degrees from {lo:g} to {hi:g}" + (" (not included)" if open_top else "")
        value = self.r.scalar(node, what, expected)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(node, ScalarNode):
                self.r.error(node, f"{what} is {node.value!r}; expected {expected}")
            return None
        if not lo <= value <= hi or (open_top and value == hi):
            self.r.error(node, f"{what} is {value:g}; expected {expected}")
            return None
        return float(value)

    def _length(self, node: Node, what: str, minimum: float) -> float | None:
        """Metres: a number, or text such as ``1.5km`` or ``1500m``."""
        expected = "a length such as 1500m or 1.5km (a bare number is metres)"
        value = self.r.scalar(node, what, expected)
        metres: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metres = float(value)
        elif isinstance(value, str):
            text = value.strip().replace(" ", "")
            for suffix, factor in (("km", 1000.0), ("m", 1.0)):
                if text.endswith(suffix):
                    try:
                        metres = float(text[: -len(suffix)]) * factor
                    except ValueError:
                        metres = None
                    break
        if metres is None or metres != metres:
            if isinstance(node, ScalarNode):
                self.r.error(node, f"{what} is {node.value!r}; expected {expected}")
            return None
        if metres < minimum:
            self.r.error(node, f"{what} is {metres:g} m; expected at least {minimum:g} m")
            return None
        return metres

    def _orbit(self, node: Node, what: str) -> Orbit | None:
        m = self.r.mapping(node, what, ("tle", "tle-file", "name"))
        if m is None:
            return None
        if ("tle" in m) == ("tle-file" in m):
            self.r.error(node, f"{what} needs one of tle: [LINE1, LINE2] or tle-file: PATH (with name:); expected one")
            return None
        if "tle" in m:
            items = self.r.sequence(m["tle"][1], f"{what} tle", "the two lines of a TLE")
            if items is None:
                return None
            if len(items) != 2:
                self.r.error(m["tle"][1], f"{what} tle has {len(items)} lines; expected two (line 1 and line 2)")
                return None
            texts = [self.r.text(item, f"{what} tle line", "a TLE line in quotes") for item in items]
            if texts[0] is None or texts[1] is None:
                return None
            places = [(self.filename, item.start_mark.line + 1, _content_column(item)) for item in items]
            return self._checked(texts[0], texts[1], places, "", what)
        if "name" not in m:
            self.r.error(node, f"{what} tle-file needs name: the satellite's name in the file; expected both")
            return None
        return self._tle_file(m["tle-file"][1], m["name"][1], what)

    def _tle_file(self, path_node: Node, name_node: Node, what: str) -> Orbit | None:
        path = self.r.text(path_node, f"{what} tle-file", "a path")
        name = self.r.text(name_node, f"{what} name", "a satellite's name as the file writes it")
        if path is None or name is None:
            return None
        base = Path(self.filename).parent if self.filename != "<scenario>" else Path(".")
        full = os.fspath(base / path)
        try:
            text, _ = read_file(full, "TLE file")
        except ScenarioErrors as e:
            self.r.error(path_node, f"{what} tle-file {path}: {e.errors[0].message if e.errors else e}")
            return None
        found = read_tle_file(text, name)
        if found is None:
            names = tle_names(text)
            self.r.error(
                name_node,
                f"{what}: no satellite named {name!r} in {path}{did_you_mean(name, names)}; expected one of: "
                f"{', '.join(names[:8]) or '(no three-line sets)'}",
            )
            return None
        row, line1, line2 = found
        return self._checked(line1, line2, [(full, row + 1, 1), (full, row + 2, 1)], name, f"{what} {name!r}")

    def _checked(
        self, line1: str, line2: str, places: list[tuple[str, int, int]], name: str, what: str
    ) -> Orbit | None:
        """An Orbit from a TLE whose lines start at ``places`` (file, line, col), or its problems reported."""
        problems = check_tle(line1, line2)
        for p in problems:
            file, line, col = places[p.line]
            self.r.errors.append(ScenarioError(f"{what}: {p.message}", file, line, col + p.col - 1))
        if problems:
            return None
        return Orbit(line1.rstrip(), line2.rstrip(), tle_epoch_unix_ns(line1), name)


def _content_column(node: Node) -> int:
    """1-based column of a scalar's first character of content (after an opening quote)."""
    quoted = isinstance(node, ScalarNode) and node.style in ("'", '"')
    return node.start_mark.column + 1 + (1 if quoted else 0)
