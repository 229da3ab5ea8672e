"""Reading a scenario's ``links:`` section: ends, medium, parameters, windows, changes."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from yaml.nodes import Node, ScalarNode

from hilnet.scenario.load_base import BuilderBase
from hilnet.scenario.model import Change, Direction, DirectionParams, GilbertElliott, Link, Medium, Window
from hilnet.scenario.reader import MappingEntries
from hilnet.units import (
    format_duration,
    framing_bits_per_byte,
    parse_baud,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)

PARAM_KEYS = (
    "delay",
    "jitter",
    "rate",
    "baud",
    "framing",
    "loss",
    "loss-model",
    "bit-error-rate",
    "queue",
    "queue-units",
    "reorder",
)
LINK_KEYS = ("ends", "medium", "up", "changes") + PARAM_KEYS
CHANGE_KEYS = ("at", "delay", "jitter", "rate", "baud", "loss", "bit-error-rate", "queue", "queue-units")

# UART character framings a scenario may name, and the line bits per byte each costs.
FRAMINGS = {name: framing_bits_per_byte(name) for name in ("8N1", "8N2", "8E1", "8O1", "8E2", "8O2")}
DEFAULT_BAUD = 115200
DEFAULT_ETHERNET_RATE = 100_000_000  # a Raspberry Pi 3B's NIC; say `rate:` for anything else
MEDIA: tuple[Medium, ...] = ("serial", "ethernet")
_BERNOULLI: tuple[Literal["bernoulli"]] = ("bernoulli",)

# YAML key -> DirectionParams field
_FIELD = {
    "delay": "delay_ns",
    "jitter": "jitter_ns",
    "rate": "rate_bps",
    "baud": "baud",
    "framing": "bits_per_byte",
    "loss": "loss",
    "loss-model": "loss_model",
    "bit-error-rate": "ber",
    "queue": "queue_bytes",
    "queue-units": "queue_units",
    "reorder": "reorder",
}


class LinkBuilder(BuilderBase):
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
        ends = self._ends(m["ends"][1], what) if "ends" in m else None
        medium = r.choice(m["medium"][1], f"{what} medium", MEDIA) if "medium" in m else None
        shared = self._params(m, what, medium, PARAM_KEYS)
        overrides: dict[Direction, dict[str, tuple[object, Node]]] = {"forward": {}, "backward": {}}
        for key, (knode, vnode) in m.items():
            if "->" not in key:
                continue
            direction = self._direction(knode, key, ends, what)
            sub = r.mapping(vnode, f"{what} {key}", PARAM_KEYS)
            if direction is None or sub is None:
                continue
            overrides[direction] = self._params(sub, f"{what} {key}", medium, PARAM_KEYS)
        windows = self._windows(m["up"][1], what) if "up" in m else ()
        changes = self._changes(m["changes"][1], what, medium, ends) if "changes" in m else ()
        if ends is None or medium is None:
            return None
        directions = []
        reported: set[int] = set()  # a shared jitter is one mistake, not one per direction
        labels: tuple[tuple[Direction, str], ...] = (
            ("forward", f"{ends[0]}->{ends[1]}"),
            ("backward", f"{ends[1]}->{ends[0]}"),
        )
        for direction, label in labels:
            merged = {**shared, **overrides[direction]}
            params = _defaults(medium).updated({f: v for f, (v, _n) in merged.items()})
            if params.jitter_ns > params.delay_ns and id(merged["jitter_ns"][1]) not in reported:
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
        return Link(
            name=name,
            a=ends[0],
            b=ends[1],
            medium=medium,
            forward=directions[0],
            backward=directions[1],
            windows=windows,
            changes=changes,
        )

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

    def _direction(self, knode: Node, key: str, ends: tuple[str, str] | None, what: str) -> Direction | None:
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

    def _params(
        self, m: MappingEntries, what: str, medium: Medium | None, keys: tuple[str, ...]
    ) -> dict[str, tuple[object, Node]]:
        """Direction parameters given in mapping ``m``: field name -> (value, node)."""
        out: dict[str, tuple[object, Node]] = {}
        for key, (knode, v) in m.items():
            if key not in keys or key in ("at", "ends", "medium", "up", "changes"):
                continue
            value = self._param(key, knode, v, what, medium)
            if value is not None:
                out[_FIELD[key]] = (value, v)
        return out

    def _param(self, key: str, knode: Node, v: Node, what: str, medium: Medium | None) -> object | None:
        """The value of parameter ``key``; None (reported) when it is wrong or does not apply."""
        r = self.r
        w = f"{what} {key}"
        if key in ("delay", "jitter"):
            return r.unit(v, w, parse_duration, "a duration such as 120ms")
        if key in ("rate", "baud", "framing"):
            return self._pacing(key, knode, v, what, medium)
        if key in ("loss", "bit-error-rate"):
            return r.unit(v, w, parse_fraction, "a fraction such as 0.5% or 1e-6")
        if key == "loss-model":
            return self._loss_model(v, w)
        if key == "queue":
            queue = r.unit(v, w, parse_size, "a size such as 64KiB")
            if queue == 0:
                r.error(v, f"{w} is 0; expected a size above 0 such as 64KiB (omit it for no limit)")
                return None
            return queue
        if key == "queue-units":
            return r.integer(v, w, minimum=1)
        if key == "reorder":
            return r.boolean(v, w)
        return None

    def _pacing(self, key: str, knode: Node, v: Node, what: str, medium: Medium | None) -> int | None:
        """``rate`` (ethernet), ``baud`` or ``framing`` (serial); the wrong one for the medium is reported."""
        r = self.r
        w = f"{what} {key}"
        if key == "rate":
            if medium == "serial":
                r.error(
                    knode,
                    f"{what}: a serial link is paced by 'baud', not 'rate'; expected baud: "
                    "115200 (a symbol rate: 8N1 moves baud/10 bytes per second)",
                )
                return None
            return r.unit(v, w, parse_rate, "a rate such as 10Mbit/s")
        if medium == "ethernet":
            r.error(
                knode,
                f"{what}: an ethernet link is paced by 'rate', not 'baud'; expected rate: 10Mbit/s (or medium: serial)"
                if key == "baud"
                else f"{what}: framing is a UART setting; expected it on a serial link only",
            )
            return None
        if key == "baud":
            return r.unit(v, w, parse_baud, "a baud rate such as 115200")
        choice = r.choice(v, w, FRAMINGS)
        return FRAMINGS[choice] if choice else None

    def _loss_model(self, node: Node, what: str) -> Literal["bernoulli"] | GilbertElliott | None:
        r = self.r
        if isinstance(node, ScalarNode):
            return r.choice(node, what, _BERNOULLI)
        m = r.mapping(node, what, ("gilbert-elliott",), required=("gilbert-elliott",))
        if not m or "gilbert-elliott" not in m:
            return None
        w = f"{what} gilbert-elliott"
        g = r.mapping(m["gilbert-elliott"][1], w, ("p", "r", "loss-good", "loss-bad"), required=("p", "r"))
        if g is None or "p" not in g or "r" not in g:
            return None
        values: dict[str, float | None] = {}
        for key, default in (("p", None), ("r", None), ("loss-good", 0.0), ("loss-bad", 1.0)):
            if key in g:
                values[key] = r.unit(g[key][1], f"{w} {key}", parse_fraction, "a probability such as 1%")
            else:
                values[key] = default
        p, rr, good, bad = values["p"], values["r"], values["loss-good"], values["loss-bad"]
        if p is None or rr is None or good is None or bad is None:
            return None
        for key in ("p", "r"):
            if values[key] == 0:
                r.error(g[key][1], f"{w} {key} is 0; expected a probability above 0 (else the state never changes)")
                return None
        return GilbertElliott(p=p, r=rr, loss_good=good, loss_bad=bad)

    def _windows(self, node: Node, what: str) -> tuple[Window, ...]:
        r = self.r
        items = r.sequence(node, f"{what} up", "windows such as [0m-38m, 47m-85m]")
        if items is None:
            return ()
        if not items:
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
        self, node: Node, what: str, medium: Medium | None, ends: tuple[str, str] | None
    ) -> tuple[Change, ...]:
        r = self.r
        items = r.sequence(node, f"{what} changes", "changes such as {at: 40m, rate: 2Mbit/s}")
        if items is None:
            return ()
        out: list[Change] = []
        for item in items:
            m = r.mapping(item, f"{what} change", CHANGE_KEYS, required=("at",), extra=lambda k: "->" in k)
            if m is None or "at" not in m:
                continue
            at = self._time(m["at"][1], f"{what} change at")
            shared = self._params(m, f"{what} change", medium, CHANGE_KEYS)
            per_dir: dict[Direction, dict[str, tuple[object, Node]]] = {}
            for key, (knode, vnode) in m.items():
                if "->" not in key:
                    continue
                direction = self._direction(knode, key, ends, f"{what} change")
                sub = r.mapping(vnode, f"{what} change {key}", CHANGE_KEYS[1:])
                if direction is not None and sub is not None:
                    per_dir[direction] = self._params(sub, f"{what} change {key}", medium, CHANGE_KEYS)
            if len(m) == 1:
                r.error(
                    item,
                    f"{what} change at {m['at'][1].value} changes nothing; expected at least one of: "
                    f"{', '.join(CHANGE_KEYS[1:])} or a direction block a->b: {{...}}",
                )
                continue
            if at is None:
                continue
            if shared:
                out.append(Change(at, "both", MappingProxyType({f: v for f, (v, _) in shared.items()})))
            for direction, params in per_dir.items():
                if params:
                    out.append(Change(at, direction, MappingProxyType({f: v for f, (v, _) in params.items()})))
        out.sort(key=lambda c: c.at_ns)
        return tuple(out)


def _sub(node: Node, text: str) -> ScalarNode:
    """A scalar node for part of another scalar, at the same mark (a window's start or end)."""
    return ScalarNode("tag:yaml.org,2002:str", text.strip(), node.start_mark, node.end_mark)


def _defaults(medium: Medium) -> DirectionParams:
    if medium == "serial":
        return DirectionParams(baud=DEFAULT_BAUD, bits_per_byte=FRAMINGS["8N1"])
    return DirectionParams(rate_bps=DEFAULT_ETHERNET_RATE)
