"""Reading a scenario's ``links:`` section: ends, medium, parameters, windows, changes."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from yaml.nodes import Node, ScalarNode

from hilnet.scenario.load_geometry import GEOMETRY_KEYS, GeometryBuilder
from hilnet.scenario.load_params import MEDIA, PARAM_KEYS, ParamBuilder, defaults
from hilnet.scenario.model import (
    CLS_BY_MEDIUM,
    STACK_CLS,
    Change,
    Direction,
    DirectionParams,
    Link,
    Medium,
    OneWay,
    Pacing,
    Window,
    merged_windows,
)
from hilnet.scenario.reader import MappingEntries
from hilnet.units import format_duration, parse_duration

LINK_KEYS = ("ends", "medium", "cl", "up", "changes") + PARAM_KEYS + GEOMETRY_KEYS
DIRECTION_KEYS = PARAM_KEYS + ("up", "changes")  # a direction block `a->b: {...}`
CHANGE_KEYS = ("at", "delay", "jitter", "rate", "baud", "loss", "bit-error-rate", "queue", "queue-units")


class LinkBuilder(GeometryBuilder, ParamBuilder):
    def _links(self, node: Node) -> tuple[Link, ...]:
        entries = self.r.named_mapping(node, "links", "{ends: [a, b], medium: serial|ethernet, ...}")
        if entries is None:
            self.all_links_built = False
            return ()
        self.link_names = [key.value for key, _ in entries]
        links = tuple(link for key, value in entries if (link := self._link(key.value, value)) is not None)
        self.all_links_built = len(links) == len(entries)
        return links

    def _link(self, name: str, node: Node) -> Link | None:
        r = self.r
        what = f"link {name!r}"
        m = r.mapping(node, what, LINK_KEYS, required=("ends", "medium"), extra=lambda k: "->" in k)
        if m is None:
            return None
        first_pacing = len(self.pacing_seen)
        self._link_geometry(m, what, name)
        ends = self._ends(m["ends"][1], what) if "ends" in m else None
        medium = r.choice(m["medium"][1], f"{what} medium", MEDIA) if "medium" in m else None
        cl = r.choice(m["cl"][1], f"{what} cl on {medium}", CLS_BY_MEDIUM[medium]) if "cl" in m and medium else None
        shared = self._params(m, what, medium, PARAM_KEYS)
        overrides: dict[Direction, dict[str, tuple[object, Node]]] = {"forward": {}, "backward": {}}
        own_up: dict[OneWay, tuple[Window, ...]] = {}
        changes: list[Change] = []
        for key, (knode, vnode) in m.items():
            if "->" not in key:
                continue
            direction = self._direction(knode, key, ends, what)
            sub = r.mapping(vnode, f"{what} {key}", DIRECTION_KEYS)
            if direction is None or sub is None:
                continue
            overrides[direction] = self._params(sub, f"{what} {key}", medium, PARAM_KEYS)
            if "up" in sub:
                own_up[direction] = self._windows(sub["up"][1], f"{what} {key}", one_way=True)
            if "changes" in sub:
                changes += self._changes(sub["changes"][1], f"{what} {key}", medium, ends, only=direction)
        windows = self._windows(m["up"][1], what) if "up" in m else ()
        if "changes" in m:
            changes += self._changes(m["changes"][1], what, medium, ends)
        changes.sort(key=lambda c: c.at_ns)
        directed = None
        if own_up:
            windows, directed = self._directed(m, what, windows, own_up, ends)
        if ends is None or medium is None:
            return None
        self._stacks_speak(ends, medium, cl, m, what)
        light = name in self.wanted and self.wanted[name].light_time  # no delay yet to hold jitter against
        forward, backward = self._both_ways(what, ends, medium, shared, overrides, light)
        pacing = self.pacing_seen[first_pacing:] + _default_pacing(what, node, medium, shared, overrides)
        return Link(
            name=name,
            a=ends[0],
            b=ends[1],
            medium=medium,
            forward=forward,
            backward=backward,
            windows=windows,
            changes=tuple(changes),
            directed=directed,
            cl=cl,
            pacing=tuple(pacing),
        )

    def _stacks_speak(
        self, ends: tuple[str, str], medium: Medium, cl: str | None, m: MappingEntries, what: str
    ) -> None:
        """Refuse a link whose CL one of its ends' stacks cannot speak (ION on a serial link, or TCPCLv4)."""
        chosen = cl or CLS_BY_MEDIUM[medium][0]
        for end in ends:
            stack, written = self.node_stacks.get(end, ("hilnet", None))
            speaks = STACK_CLS[stack]
            if chosen in speaks or written is None:
                continue
            options = [c for c in CLS_BY_MEDIUM[medium] if c in speaks]
            expected = (
                f"cl: {' or '.join(options)} on this link"
                if options
                else f"an ethernet link with cl: {' or '.join(speaks)} ({stack} has no {medium} convergence layer)"
            )
            default = "" if cl else f" (the default on {medium})"
            self.r.error(
                m["cl"][1] if "cl" in m else m["medium"][1],
                f"{what}: node {end!r} runs stack {stack} (line {written.start_mark.line + 1}), which does not "
                f"speak {chosen}{default}; expected {expected} (docs/stacks.md)",
            )
            return

    def _both_ways(
        self,
        what: str,
        ends: tuple[str, str],
        medium: Medium,
        shared: dict[str, tuple[object, Node]],
        overrides: dict[Direction, dict[str, tuple[object, Node]]],
        light_time: bool = False,
    ) -> tuple[DirectionParams, DirectionParams]:
        """Forward and backward parameters: the link's values, then each direction's own."""
        r = self.r
        directions = []
        reported: set[int] = set()  # a shared jitter is one mistake, not one per direction
        labels: tuple[tuple[Direction, str], ...] = (
            ("forward", f"{ends[0]}->{ends[1]}"),
            ("backward", f"{ends[1]}->{ends[0]}"),
        )
        for direction, label in labels:
            merged = {**shared, **overrides[direction]}
            params = defaults(medium).updated({f: v for f, (v, _n) in merged.items()})
            if params.jitter_ns > params.delay_ns and not light_time and id(merged["jitter_ns"][1]) not in reported:
                reported.add(id(merged["jitter_ns"][1]))
                r.error(
                    merged["jitter_ns"][1],
                    f"{what} {label}: jitter {format_duration(params.jitter_ns)} is "
                    f"larger than delay {format_duration(params.delay_ns)}; expected "
                    "jitter <= delay (nothing arrives before it was sent)",
                )
            if params.loss and not isinstance(params.loss_model, str) and id(merged["loss"][1]) not in reported:
                reported.add(id(merged["loss"][1]))
                r.error(
                    merged["loss"][1],
                    f"{what} {label}: both loss and a gilbert-elliott loss-model; "
                    "expected one of them (the model sets its own loss)",
                )
            directions.append(params)
        return directions[0], directions[1]

    def _directed(
        self,
        m: MappingEntries,
        what: str,
        shared: tuple[Window, ...],
        own: dict[OneWay, tuple[Window, ...]],
        ends: tuple[str, str] | None,
    ) -> tuple[tuple[Window, ...], tuple[tuple[Window, ...], tuple[Window, ...]] | None]:
        """(the link's windows: either direction up, each direction's windows or None when they are the same)."""
        always = (Window(0, self.duration),) if self.duration else ()
        fwd = own.get("forward", shared or always)
        bwd = own.get("backward", shared or always)
        if "up" in m and len(own) == 2 and ends is not None:
            self.r.error(
                m["up"][0],
                f"{what}: up is given for the link and for both directions ({ends[0]}->{ends[1]}, "
                f"{ends[1]}->{ends[0]}), so the link's own is never used; expected it in one place",
            )
        if not fwd and not bwd:
            node = next(vnode for key, (_k, vnode) in m.items() if "->" in key)
            self.r.error(node, f"{what} is never up in either direction; expected a window in one of them")
            return shared, None
        return (fwd, None) if fwd == bwd else (merged_windows(fwd + bwd), (fwd, bwd))

    def _ends(self, node: Node, what: str) -> tuple[str, str] | None:
        r = self.r
        items = r.sequence(node, f"{what} ends", "two node names such as [iss, tdrs-w]")
        if items is None:
            return None
        if len(items) != 2:
            r.error(
                node,
                f"{what} ends has {len(items)} item{'s' if len(items) != 1 else ''}; "
                "expected two node names such as [iss, tdrs-w]",
            )
            return None
        names = []
        for item in items:
            end = self._node_ref(item, f"{what} end")
            if end is None:
                return None
            names.append(end)
        if names[0] == names[1]:
            r.error(items[1], f"{what} joins {names[0]!r} to itself; expected two different nodes")
            return None
        return names[0], names[1]

    def _direction(self, knode: Node, key: str, ends: tuple[str, str] | None, what: str) -> OneWay | None:
        """Which direction a ``a->b`` key names; None (reported) when it names no end of the link."""
        frm, _, to = (part.strip() for part in key.partition("->"))
        if ends is None:
            return None
        if (frm, to) == ends:
            return "forward"
        if (to, frm) == ends:
            return "backward"
        unknown = [n for n in (frm, to) if n not in ends]
        self.r.error(
            knode,
            f"{what}: {key!r} names {', '.join(repr(n) for n in unknown)}, not an end of this "
            f"link; expected {ends[0]}->{ends[1]} or {ends[1]}->{ends[0]}",
        )
        return None

    def _windows(self, node: Node, what: str, one_way: bool = False) -> tuple[Window, ...]:
        """Windows of ``up:``, sorted; a direction's own ``up: []`` means never up that way."""
        r = self.r
        items = r.sequence(node, f"{what} up", "windows such as [0m-38m, 47m-85m]")
        if items is None:
            return ()
        if not items and not one_way:
            r.error(
                node,
                f"{what} up is empty, so the link would never be up; expected windows such as "
                "[0m-38m] (omit 'up' for a link that is always up)",
            )
            return ()
        parsed: list[tuple[Window, Node]] = []
        for item in items:
            text = r.text(item, f"{what} window", "START-END such as 10m-48m")
            if text is None:
                continue
            parts = text.split("-")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                r.error(item, f"{what} window {text!r} is not START-END; expected a window such as 10m-48m")
                continue
            start = r.unit(_sub(item, parts[0]), f"{what} window {text!r} start", parse_duration, "a duration")
            end = r.unit(_sub(item, parts[1]), f"{what} window {text!r} end", parse_duration, "a duration")
            if start is None or end is None:
                continue
            if end <= start:
                r.error(item, f"{what} window {text!r} ends before it starts; expected START-END with START < END")
                continue
            if self.duration is not None and end > self.duration:
                r.error(
                    item,
                    f"{what} window {text!r} ends after clock.duration "
                    f"({format_duration(self.duration)}); expected windows within it",
                )
                continue
            parsed.append((Window(start, end), item))
        parsed.sort(key=lambda p: p[0].start_ns)
        for (prev, prev_node), (cur, cur_node) in zip(parsed, parsed[1:]):
            if cur.start_ns < prev.end_ns:
                r.error(
                    cur_node,
                    f"{what} window {cur_node.value!r} overlaps {prev_node.value!r} (line "
                    f"{prev_node.start_mark.line + 1}); expected windows that do not overlap",
                )
        return tuple(w for w, _ in parsed)

    def _changes(
        self, node: Node, what: str, medium: Medium | None, ends: tuple[str, str] | None, only: OneWay | None = None
    ) -> list[Change]:
        """A ``changes:`` list; ``only`` is the direction when it sits in a direction block."""
        r = self.r
        items = r.sequence(node, f"{what} changes", "changes such as {at: 40m, rate: 2Mbit/s}")
        if items is None:
            return []
        out: list[Change] = []
        extra = None if only else (lambda k: "->" in k)
        for item in items:
            m = r.mapping(item, f"{what} change", CHANGE_KEYS, required=("at",), extra=extra)
            if m is None or "at" not in m:
                continue
            at = self._time(m["at"][1], f"{what} change at")
            shared = self._params(m, f"{what} change", medium, CHANGE_KEYS)
            per_dir: dict[OneWay, dict[str, tuple[object, Node]]] = {}
            for key, (knode, vnode) in m.items():
                if "->" not in key:
                    continue
                direction = self._direction(knode, key, ends, f"{what} change")
                sub = r.mapping(vnode, f"{what} change {key}", CHANGE_KEYS[1:])
                if direction is not None and sub is not None:
                    per_dir[direction] = self._params(sub, f"{what} change {key}", medium, CHANGE_KEYS)
            if len(m) == 1:
                if len(item.value) == 1:  # else its other keys were wrong, and said so
                    blocks = "" if only else " or a direction block a->b: {...}"
                    r.error(
                        item,
                        f"{what} change at {m['at'][1].value} changes nothing; expected at least one of: "
                        f"{', '.join(CHANGE_KEYS[1:])}{blocks}",
                    )
                continue
            if at is None:
                continue
            if shared:
                out.append(Change(at, only or "both", MappingProxyType({f: v for f, (v, _) in shared.items()})))
            for direction, params in per_dir.items():
                if params:
                    out.append(Change(at, direction, MappingProxyType({f: v for f, (v, _) in params.items()})))
        return out


def _default_pacing(
    what: str,
    node: Node,
    medium: Medium,
    shared: dict[str, tuple[object, Node]],
    overrides: dict[Direction, dict[str, tuple[object, Node]]],
) -> list[Pacing]:
    """The medium's default rate or baud, at the link, when a direction runs at it (no rate or baud given)."""
    field: Literal["rate_bps", "baud"] = "baud" if medium == "serial" else "rate_bps"
    if field in shared or all(field in overrides[d] for d in ("forward", "backward")):
        return []
    value = getattr(defaults(medium), field)
    key = "baud" if field == "baud" else "rate"
    mark = node.start_mark
    return [Pacing(field, value, f"{what} {key} (the default, none given)", mark.line + 1, mark.column + 1)]


def _sub(node: Node, text: str) -> ScalarNode:
    """A scalar node for part of another scalar, at the same mark (a window's start or end)."""
    return ScalarNode("tag:yaml.org,2002:str", text.strip(), node.start_mark, node.end_mark)
