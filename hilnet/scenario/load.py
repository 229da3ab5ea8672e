"""Scenario YAML -> :class:`~hilnet.scenario.model.Scenario`, with every error at FILE:LINE:COL.

The loader reads the whole file, collects every problem it finds (wrong keys
with a did-you-mean, wrong types, unknown nodes, overlapping windows, times
past ``clock.duration``, unreachable traffic...) and raises them together as
one :class:`~hilnet.errors.ScenarioErrors`. The language is documented key by
key in ``docs/scenario.md``; this module and that page must agree.
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode

from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.model import (
    Change, ClockSpec, Crash, Cut, DirectionParams, ErrorBurst, Expect, Fault, GilbertElliott, Link, Node as
    ScenarioNode, Scenario, Traffic, Window,
)
from hilnet.scenario.reader import Reader, is_name
from hilnet.scenario.yamltree import MAX_BYTES, compose, read_file
from hilnet.units import format_duration, parse_baud, parse_duration, parse_fraction, parse_rate, parse_size

FORMAT_VERSION = 1

TOP_KEYS = ("hilnet", "name", "description", "seed", "clock", "nodes", "links", "traffic", "faults", "expect")
PARAM_KEYS = ("delay", "jitter", "rate", "baud", "framing", "loss", "loss-model", "bit-error-rate",
              "queue", "queue-units", "reorder")
LINK_KEYS = ("ends", "medium", "up", "changes") + PARAM_KEYS
CHANGE_KEYS = ("at", "delay", "jitter", "rate", "baud", "loss", "bit-error-rate", "queue", "queue-units")
TRAFFIC_KEYS = ("name", "from", "to", "start", "every", "count", "size", "lifetime", "priority")
FAULT_KEYS = ("at", "cut", "crash", "error-burst", "for", "restart-after", "bit-error-rate")
EXPECT_KEYS = ("delivered", "within", "within-plan", "duplicates", "intact", "lost")
PRIORITIES = ("bulk", "normal", "expedited")

# UART character framings: start bit + data bits + parity + stop bits on the wire per byte.
FRAMINGS = {"8N1": 10, "8N2": 11, "8E1": 11, "8O1": 11, "8E2": 12, "8O2": 12}
DEFAULT_BAUD = 115200
DEFAULT_ETHERNET_RATE = 100_000_000  # a Raspberry Pi 3B's NIC; say `rate:` for anything else
DEFAULT_BURST_BER = 1e-4

_IPN_EID = re.compile(r"ipn:(0|[1-9]\d*)\.(0|[1-9]\d*)")
# RFC 9171 4.2.5.1.1: dtn://node-name/demux, node-name a URI reg-name; a node id has an empty demux.
_DTN_EID = re.compile(r"dtn://([A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+/")

# YAML key -> DirectionParams field
_FIELD = {"delay": "delay_ns", "jitter": "jitter_ns", "rate": "rate_bps", "baud": "baud", "framing": "bits_per_byte",
          "loss": "loss", "loss-model": "loss_model", "bit-error-rate": "ber", "queue": "queue_bytes",
          "queue-units": "queue_units", "reorder": "reorder"}


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check a scenario file; raises ScenarioErrors listing every problem."""
    text, filename = read_file(path)
    return load_scenario_text(text, filename)


def load_scenario_text(text: str, filename: str = "<scenario>") -> Scenario:
    """Read and check scenario YAML text; ``filename`` is used in messages and as ``source``."""
    if len(text) > MAX_BYTES:
        raise ScenarioErrors([ScenarioError(
            f"scenario text is over {MAX_BYTES // 2**20} MiB; expected a scenario under that", filename, 1, 1)])
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise ScenarioErrors([ScenarioError(
            "the file is empty; expected a scenario mapping that starts with 'hilnet: 1'", filename, 1, 1)])
    root, errors = compose(text, filename)
    if root is None:
        raise ScenarioErrors(errors or [ScenarioError(
            "no YAML document; expected a scenario mapping that starts with 'hilnet: 1'", filename, 1, 1)])
    builder = _Builder(filename)
    builder.r.errors.extend(errors)
    scenario = builder.build(root)
    if builder.r.errors or scenario is None:
        raise ScenarioErrors(builder.r.errors)
    return scenario


class _Builder:
    def __init__(self, filename: str):
        self.r = Reader(filename)
        self.filename = filename
        self.duration: int | None = None
        self.node_names: list[str] = []  # every node declared, even one with a bad eid
        self.link_names: list[str] = []  # every link declared, even one with errors
        self.all_links_built = True  # else reachability would blame traffic for a broken link
        self.all_traffic_built = True

    # -- top level -------------------------------------------------------------

    def build(self, root: Node) -> Scenario | None:
        r = self.r
        if not isinstance(root, MappingNode):
            r.error(root, f"the file holds {_describe(root)}; expected a scenario mapping that starts with 'hilnet: 1'")
            return None
        top = r.mapping(root, "the scenario", TOP_KEYS, required=("hilnet", "clock", "nodes"))
        if top is None:
            return None
        version = None
        if "hilnet" in top:
            version = r.integer(top["hilnet"][1], "hilnet (the format version)")
            if version is not None and version != FORMAT_VERSION:
                r.error(top["hilnet"][1], f"format version {version} is not one this hilnet reads; "
                                          f"expected hilnet: {FORMAT_VERSION}")
        name = Path(self.filename).stem if self.filename != "<scenario>" else "scenario"
        if "name" in top:
            name = r.text(top["name"][1], "name", "the scenario's name") or name
        description = ""
        if "description" in top:
            description = r.text(top["description"][1], "description", "a sentence of text") or ""
        seed = 0
        if "seed" in top:
            seed = r.integer(top["seed"][1], "seed", minimum=0) or 0
        clock = self._clock(top["clock"][1]) if "clock" in top else None
        self.duration = clock.duration_ns if clock else None
        nodes = self._nodes(top["nodes"][1]) if "nodes" in top else ()
        links = self._links(top["links"][1]) if "links" in top else ()
        traffic = self._traffic(top["traffic"][1], links) if "traffic" in top else ()
        faults = self._faults(top["faults"][1], links) if "faults" in top else ()
        expect = self._expect(top["expect"][1], traffic) if "expect" in top else Expect()
        if clock is None or version is None:
            return None
        return Scenario(name=name, description=description, version=version, seed=seed, clock=clock,
                        nodes=nodes, links=links, traffic=traffic, faults=faults, expect=expect,
                        source=self.filename)

    def _clock(self, node: Node) -> ClockSpec | None:
        m = self.r.mapping(node, "clock", ("scale", "duration"), required=("duration",))
        if m is None:
            return None
        scale = 1.0
        if "scale" in m:
            scale = self.r.positive_number(m["scale"][1], "clock.scale (scenario seconds per wall second)") or 1.0
        duration = None
        if "duration" in m:
            duration = self.r.unit(m["duration"][1], "clock.duration", parse_duration, "a duration such as 95m")
            if duration == 0:
                self.r.error(m["duration"][1], "clock.duration is 0; expected a duration above 0 such as 95m")
                duration = None
        return ClockSpec(scale=scale, duration_ns=duration) if duration else None

    def _nodes(self, node: Node) -> tuple[ScenarioNode, ...]:
        r = self.r
        entries = r.named_mapping(node, "nodes", "{eid: ipn:N.0}")
        if entries is None:
            return ()
        if not entries and isinstance(node, MappingNode):
            r.error(node, "nodes is empty; expected at least one node such as iss: {eid: ipn:1.0}")
        out = []
        eids: dict[str, int] = {}
        self.node_names = [key.value for key, _ in entries]
        for key, value in entries:
            m = r.mapping(value, f"node {key.value!r}", ("eid",), required=("eid",))
            if not m or "eid" not in m:
                continue
            eid_node = m["eid"][1]
            eid = r.text(eid_node, f"node {key.value!r} eid", "an endpoint id such as ipn:1.0 or dtn://iss/")
            if eid is None:
                continue
            if not _valid_eid(eid_node, eid, key.value, r):
                continue
            if eid in eids:
                r.error(eid_node, f"node {key.value!r} eid {eid} is already the eid of another node (line "
                                  f"{eids[eid]}); expected each node to have its own eid")
                continue
            eids[eid] = eid_node.start_mark.line + 1
            out.append(ScenarioNode(name=key.value, eid=eid))
        return tuple(out)

    # -- links -----------------------------------------------------------------

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
        medium = r.choice(m["medium"][1], f"{what} medium", ("serial", "ethernet")) if "medium" in m else None
        shared = self._params(m, what, medium, PARAM_KEYS)
        overrides: dict[str, dict[str, tuple[object, Node]]] = {"forward": {}, "backward": {}}
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
        for direction, label in (("forward", f"{ends[0]}->{ends[1]}"), ("backward", f"{ends[1]}->{ends[0]}")):
            merged = {**shared, **overrides[direction]}
            params = _defaults(medium)
            params = replace(params, **{f: v for f, (v, _n) in merged.items()})
            if params.jitter_ns > params.delay_ns and id(merged["jitter_ns"][1]) not in reported:
                reported.add(id(merged["jitter_ns"][1]))
                r.error(merged["jitter_ns"][1], f"{what} {label}: jitter {format_duration(params.jitter_ns)} is "
                                                f"larger than delay {format_duration(params.delay_ns)}; expected "
                                                "jitter <= delay (nothing arrives before it was sent)")
            if params.loss and not isinstance(params.loss_model, str) and id(merged["loss"][1]) not in reported:
                reported.add(id(merged["loss"][1]))
                r.error(merged["loss"][1], f"{what} {label}: both loss and a gilbert-elliott loss-model; "
                                           "expected one of them (the model sets its own loss)")
            directions.append(params)
        return Link(name=name, a=ends[0], b=ends[1], medium=medium, forward=directions[0],
                    backward=directions[1], windows=windows, changes=changes)

    def _ends(self, node: Node, what: str) -> tuple[str, str] | None:
        r = self.r
        items = r.sequence(node, f"{what} ends", "two node names such as [iss, tdrs-w]")
        if items is None:
            return None
        if len(items) != 2:
            r.error(node, f"{what} ends has {len(items)} item{'s' if len(items) != 1 else ''}; "
                          "expected two node names such as [iss, tdrs-w]")
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

    def _node_ref(self, node: Node, what: str) -> str | None:
        name = self.r.text(node, what, "a node name")
        if name is None:
            return None
        if name not in self.node_names:
            self.r.error(node, f"{what} {name!r} is not a node{_did_you_mean(name, self.node_names)}; "
                               f"expected one of: {', '.join(self.node_names) or '(no nodes)'}")
            return None
        return name

    def _direction(self, knode: Node, key: str, ends: tuple[str, str] | None, what: str) -> str | None:
        frm, _, to = (part.strip() for part in key.partition("->"))
        if ends is None:
            return None
        if (frm, to) == ends:
            return "forward"
        if (to, frm) == ends:
            return "backward"
        unknown = [n for n in (frm, to) if n not in ends]
        self.r.error(knode, f"{what}: {key!r} names {', '.join(repr(n) for n in unknown)}, not an end of this "
                            f"link; expected {ends[0]}->{ends[1]} or {ends[1]}->{ends[0]}")
        return None

    def _params(self, m: dict[str, tuple[ScalarNode, Node]], what: str, medium: str | None,
                keys: tuple[str, ...]) -> dict[str, tuple[object, Node]]:
        """Direction parameters given in mapping ``m``: field name -> (value, node)."""
        r = self.r
        out: dict[str, tuple[object, Node]] = {}
        for key, (knode, v) in m.items():
            if key not in keys or key in ("at", "ends", "medium", "up", "changes"):
                continue
            w = f"{what} {key}"
            value: object = None
            if key in ("delay", "jitter"):
                value = r.unit(v, w, parse_duration, "a duration such as 120ms")
            elif key == "rate":
                if medium == "serial":
                    r.error(knode, f"{what}: a serial link is paced by 'baud', not 'rate'; expected baud: "
                                   "115200 (a symbol rate: 8N1 moves baud/10 bytes per second)")
                    continue
                value = r.unit(v, w, parse_rate, "a rate such as 10Mbit/s")
            elif key == "baud":
                if medium == "ethernet":
                    r.error(knode, f"{what}: an ethernet link is paced by 'rate', not 'baud'; expected "
                                   "rate: 10Mbit/s (or medium: serial)")
                    continue
                value = r.unit(v, w, parse_baud, "a baud rate such as 115200")
            elif key == "framing":
                if medium == "ethernet":
                    r.error(knode, f"{what}: framing is a UART setting; expected it on a serial link only")
                    continue
                choice = r.choice(v, w, FRAMINGS)
                value = FRAMINGS[choice] if choice else None
            elif key in ("loss", "bit-error-rate"):
                value = r.unit(v, w, parse_fraction, "a fraction such as 0.5% or 1e-6")
            elif key == "loss-model":
                value = self._loss_model(v, w)
            elif key == "queue":
                value = r.unit(v, w, parse_size, "a size such as 64KiB")
                if value == 0:
                    r.error(v, f"{w} is 0; expected a size above 0 such as 64KiB (omit it for no limit)")
                    value = None
            elif key == "queue-units":
                value = r.integer(v, w, minimum=1)
            elif key == "reorder":
                value = r.boolean(v, w)
            if value is not None:
                out[_FIELD[key]] = (value, v)
        return out

    def _loss_model(self, node: Node, what: str) -> object | None:
        r = self.r
        if isinstance(node, ScalarNode):
            return r.choice(node, what, ("bernoulli",))
        m = r.mapping(node, what, ("gilbert-elliott",), required=("gilbert-elliott",))
        if not m or "gilbert-elliott" not in m:
            return None
        w = f"{what} gilbert-elliott"
        g = r.mapping(m["gilbert-elliott"][1], w, ("p", "r", "loss-good", "loss-bad"), required=("p", "r"))
        if g is None or "p" not in g or "r" not in g:
            return None
        values = {}
        for key, default in (("p", None), ("r", None), ("loss-good", 0.0), ("loss-bad", 1.0)):
            if key in g:
                values[key] = r.unit(g[key][1], f"{w} {key}", parse_fraction, "a probability such as 1%")
            else:
                values[key] = default
        if any(v is None for v in values.values()):
            return None
        for key in ("p", "r"):
            if values[key] == 0:
                r.error(g[key][1], f"{w} {key} is 0; expected a probability above 0 (else the state never changes)")
                return None
        return GilbertElliott(p=values["p"], r=values["r"], loss_good=values["loss-good"],
                              loss_bad=values["loss-bad"])

    def _windows(self, node: Node, what: str) -> tuple[Window, ...]:
        r = self.r
        items = r.sequence(node, f"{what} up", "windows such as [0m-38m, 47m-85m]")
        if items is None:
            return ()
        if not items:
            r.error(node, f"{what} up is empty, so the link would never be up; expected windows such as "
                          "[0m-38m] (omit 'up' for a link that is always up)")
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
                r.error(item, f"{what} window {text!r} ends after clock.duration "
                              f"({format_duration(self.duration)}); expected windows within it")
                continue
            parsed.append((Window(start, end), item))
        parsed.sort(key=lambda p: p[0].start_ns)
        for (prev, prev_node), (cur, cur_node) in zip(parsed, parsed[1:]):
            if cur.start_ns < prev.end_ns:
                r.error(cur_node, f"{what} window {cur_node.value!r} overlaps {prev_node.value!r} (line "
                                  f"{prev_node.start_mark.line + 1}); expected windows that do not overlap")
        return tuple(w for w, _ in parsed)

    def _changes(self, node: Node, what: str, medium: str | None,
                 ends: tuple[str, str] | None) -> tuple[Change, ...]:
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
            per_dir: dict[str, dict[str, tuple[object, Node]]] = {}
            for key, (knode, vnode) in m.items():
                if "->" not in key:
                    continue
                direction = self._direction(knode, key, ends, f"{what} change")
                sub = r.mapping(vnode, f"{what} change {key}", CHANGE_KEYS[1:])
                if direction is not None and sub is not None:
                    per_dir[direction] = self._params(sub, f"{what} change {key}", medium, CHANGE_KEYS)
            if len(m) == 1:
                r.error(item, f"{what} change at {m['at'][1].value} changes nothing; expected at least one of: "
                              f"{', '.join(CHANGE_KEYS[1:])} or a direction block a->b: {{...}}")
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

    def _time(self, node: Node, what: str) -> int | None:
        """A scenario time, checked against clock.duration."""
        t = self.r.unit(node, what, parse_duration, "a scenario time such as 40m")
        if t is not None and self.duration is not None and t > self.duration:
            self.r.error(node, f"{what} {format_duration(t)} is after clock.duration "
                               f"({format_duration(self.duration)}); expected a time within the run")
            return None
        return t

    # -- traffic, faults, expectations -----------------------------------------

    def _traffic(self, node: Node, links: tuple[Link, ...]) -> tuple[Traffic, ...]:
        r = self.r
        items = r.sequence(node, "traffic", "{from: iss, to: cologne, size: 300KiB, ...}")
        if items is None:
            self.all_traffic_built = False
            return ()
        graph = _graph(links)
        names: dict[str, int] = {}
        out = []
        for i, item in enumerate(items):
            m = r.mapping(item, f"traffic #{i + 1}", TRAFFIC_KEYS, required=("from", "to", "size"))
            if m is None or not {"from", "to", "size"} <= m.keys():
                self.all_traffic_built = False
                if m is None:
                    continue
            name = f"traffic-{i + 1}"
            if "name" in m:
                given = r.text(m["name"][1], f"traffic #{i + 1} name", "a name such as photos")
                if given is not None and not is_name(given):
                    r.error(m["name"][1], f"traffic name {given!r} is not a plain name; expected letters, digits, "
                                          "'-', '_' or '.', starting with a letter")
                elif given is not None:
                    if given in names:
                        r.error(m["name"][1], f"traffic name {given!r} is already used (line {names[given]}); "
                                              "expected each traffic entry to have its own name")
                    names[given] = m["name"][1].start_mark.line + 1
                    name = given
            what = f"traffic {name!r}"
            frm = self._node_ref(m["from"][1], f"{what} from") if "from" in m else None
            to = self._node_ref(m["to"][1], f"{what} to") if "to" in m else None
            if frm is not None and to is not None:
                if frm == to:
                    r.error(m["to"][1], f"{what} goes from {frm!r} to itself; expected another node")
                elif self.all_links_built and to not in _reachable(graph, frm):
                    r.error(m["to"][1], f"{what}: no path from {frm!r} to {to!r} in the link graph; expected "
                                        "links that join them, directly or through other nodes")
            start = self._time(m["start"][1], f"{what} start") if "start" in m else 0
            every = None
            if "every" in m:
                every = r.unit(m["every"][1], f"{what} every", parse_duration, "a period such as 10m")
                if every == 0:
                    r.error(m["every"][1], f"{what} every is 0; expected a period above 0 such as 10m")
                    every = None
            count = None
            if "count" in m:
                count = r.integer(m["count"][1], f"{what} count", minimum=1)
            size = r.unit(m["size"][1], f"{what} size", parse_size, "a size such as 300KiB") if "size" in m else None
            if size == 0:
                r.error(m["size"][1], f"{what} size is 0; expected a payload of at least 1 byte")
                size = None
            lifetime = self.duration
            if "lifetime" in m:
                lifetime = r.unit(m["lifetime"][1], f"{what} lifetime", parse_duration, "a duration such as 1h")
                if lifetime == 0:
                    r.error(m["lifetime"][1], f"{what} lifetime is 0; expected a duration above 0 such as 1h")
                    lifetime = None
            priority = "normal"
            if "priority" in m:
                priority = r.choice(m["priority"][1], f"{what} priority", PRIORITIES) or "normal"
            if start is None or self.duration is None:
                self.all_traffic_built = False
                continue
            if start >= self.duration:
                r.error(m["start"][1], f"{what} starts at clock.duration or after; expected a start before "
                                       f"{format_duration(self.duration)}")
                self.all_traffic_built = False
                continue
            if count is None and "count" not in m:
                # periodic without a count: as many as start before the run ends
                count = -(-(self.duration - start) // every) if every else 1
            if count is not None and every is not None and "count" in m:
                last = start + (count - 1) * every
                if last >= self.duration:
                    r.error(m["count"][1], f"{what}: the last of {count} injections falls at "
                                           f"{format_duration(last)}, not before clock.duration "
                                           f"({format_duration(self.duration)}); expected at most "
                                           f"{-(-(self.duration - start) // every)}")
                    self.all_traffic_built = False
                    continue
            if None in (frm, to, count, size, lifetime) or frm == to:
                self.all_traffic_built = False
                continue
            out.append(Traffic(name=name, frm=frm, to=to, start_ns=start, every_ns=every, count=count,
                               size=size, lifetime_ns=lifetime, priority=priority))
        return tuple(out)

    def _faults(self, node: Node, links: tuple[Link, ...]) -> tuple[Fault, ...]:
        r = self.r
        items = r.sequence(node, "faults", "{at: 20m, cut: LINK, for: 5m} and the like")
        if items is None:
            return ()
        link_names = self.link_names
        kinds = ("cut", "crash", "error-burst")
        out: list[Fault] = []
        crashes: dict[str, list[tuple[int, int | None, int]]] = {}
        for i, item in enumerate(items):
            what = f"fault #{i + 1}"
            m = r.mapping(item, what, FAULT_KEYS, required=("at",))
            if m is None:
                continue
            given = [k for k in kinds if k in m]
            if len(given) != 1:
                r.error(item, f"{what} has {' and '.join(given) if given else 'none of cut, crash, error-burst'}; "
                              "expected exactly one of cut: LINK, crash: NODE, error-burst: LINK")
                continue
            kind = given[0]
            allowed = {"cut": ("for",), "crash": ("restart-after",), "error-burst": ("for", "bit-error-rate")}[kind]
            bad = [k for k in ("for", "restart-after", "bit-error-rate") if k in m and k not in allowed]
            for k in bad:
                r.error(m[k][0], f"{what}: {kind} does not take {k!r}; expected {', '.join(allowed)}")
            at = self._time(m["at"][1], f"{what} at") if "at" in m else None
            target_node = m[kind][1]
            if kind == "crash":
                target = self._node_ref(target_node, f"{what} crash")
            else:
                target = r.text(target_node, f"{what} {kind}", "a link name")
                if target is not None and target not in link_names:
                    r.error(target_node, f"{what} {kind} {target!r} is not a link"
                                         f"{_did_you_mean(target, link_names)}; expected one of: "
                                         f"{', '.join(link_names) or '(no links)'}")
                    target = None
            span = None
            if kind in ("cut", "error-burst"):
                if "for" not in m:
                    r.error(item, f"{what} {kind} lacks 'for'; expected how long it lasts, such as for: 5m")
                else:
                    span = r.unit(m["for"][1], f"{what} for", parse_duration, "a duration such as 5m")
                    if span == 0:
                        r.error(m["for"][1], f"{what} for is 0; expected a duration above 0")
                        span = None
            restart = None
            if kind == "crash" and "restart-after" in m:
                restart = r.unit(m["restart-after"][1], f"{what} restart-after", parse_duration,
                                 "a duration such as 30s")
            ber = DEFAULT_BURST_BER
            if kind == "error-burst" and "bit-error-rate" in m:
                ber = r.unit(m["bit-error-rate"][1], f"{what} bit-error-rate", parse_fraction, "a fraction such as 1e-3")
            if at is None or target is None or bad:
                continue
            if kind == "cut" and span is not None:
                out.append(Cut(at_ns=at, link=target, for_ns=span))
            elif kind == "error-burst" and span is not None and ber is not None:
                out.append(ErrorBurst(at_ns=at, link=target, for_ns=span, ber=ber))
            elif kind == "crash":
                if "restart-after" in m and restart is None:
                    continue
                for other_at, other_restart, line in crashes.get(target, []):
                    back = None if other_restart is None else other_at + other_restart
                    if other_at <= at and (back is None or at < back):
                        r.error(target_node, f"{what}: {target!r} is still down from the crash at "
                                             f"{format_duration(other_at)} (line {line}); expected a crash "
                                             "after its restart")
                        break
                else:
                    crashes.setdefault(target, []).append((at, restart, item.start_mark.line + 1))
                    out.append(Crash(at_ns=at, node=target, restart_after_ns=restart))
        out.sort(key=lambda f: f.at_ns)
        return tuple(out)

    def _expect(self, node: Node, traffic: tuple[Traffic, ...]) -> Expect:
        r = self.r
        m = r.mapping(node, "expect", EXPECT_KEYS)
        if m is None:
            return Expect()
        values: dict[str, object] = {}
        if "delivered" in m:
            values["delivered"] = self._delivered(m["delivered"][1], sum(t.count for t in traffic))
        if "within" in m:
            values["within_ns"] = r.unit(m["within"][1], "expect within", parse_duration, "a duration such as 90m")
        if "within-plan" in m:
            values["within_plan"] = self._within_plan(m["within-plan"][1])
        for key in ("duplicates", "lost"):
            if key in m:
                values[key] = r.integer(m[key][1], f"expect {key}", minimum=0)
        if "intact" in m:
            values["intact"] = r.boolean(m["intact"][1], "expect intact")
        return Expect(**{k: v for k, v in values.items() if v is not None})

    def _delivered(self, node: Node, total: int) -> object | None:
        r = self.r
        expected = "all, a count such as 9, or a fraction such as 95% or 0.95"
        value = r.scalar(node, "expect delivered", expected)
        if value == "all":
            return "all"
        if isinstance(value, bool) or value is None:
            if isinstance(node, ScalarNode):
                r.error(node, f"expect delivered is {_describe(node)}; expected {expected}")
            return None
        if isinstance(value, int):
            if value < 0 or (self.all_traffic_built and value > total):
                r.error(node, f"expect delivered is {value}, but the traffic injects {total} bundles; "
                              f"expected a count from 0 to {total}")
                return None
            return value
        if isinstance(value, float) or (isinstance(value, str) and value.strip().endswith("%")):
            fraction = r.unit(node, "expect delivered", parse_fraction, expected)
            if fraction is not None and fraction == 0:
                r.error(node, f"expect delivered is 0%; expected a fraction above 0 ({expected})")
                return None
            return fraction
        r.error(node, f"expect delivered is {_describe(node)}; expected {expected}")
        return None

    def _within_plan(self, node: Node) -> object | None:
        r = self.r
        expected = "a factor such as 3x, or a slack duration such as 10m"
        value = r.scalar(node, "expect within-plan", expected)
        if isinstance(value, str) and value.strip().endswith("x"):
            try:
                factor = float(value.strip()[:-1])
            except ValueError:
                factor = 0.0
            if not factor >= 1 or factor == float("inf"):
                r.error(node, f"expect within-plan {value!r} is not a factor of 1 or more; expected {expected}")
                return None
            return factor
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            r.error(node, f"expect within-plan is {_describe(node)}; expected {expected} (write 3x for a factor)")
            return None
        return r.unit(node, "expect within-plan", parse_duration, expected)


def _describe(node: Node) -> str:
    from hilnet.scenario.reader import describe
    return describe(node)


def _did_you_mean(name: str, names: list[str]) -> str:
    import difflib
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sub(node: Node, text: str) -> ScalarNode:
    """A scalar node for part of another scalar, at the same mark (a window's start or end)."""
    return ScalarNode("tag:yaml.org,2002:str", text.strip(), node.start_mark, node.end_mark)


def _valid_eid(node: Node, eid: str, name: str, r: Reader) -> bool:
    ipn = _IPN_EID.fullmatch(eid)
    if ipn:
        number, service = int(ipn.group(1)), int(ipn.group(2))
        if number == 0 or number >= 2**64:
            r.error(node, f"node {name!r} eid {eid}: node number {number} is outside 1..2^64-1; "
                          "expected an eid such as ipn:1.0")
            return False
        if service != 0:
            r.error(node, f"node {name!r} eid {eid} names service {service}, not the node; expected "
                          f"ipn:{number}.0 (RFC 9171 4.2.5.1.2: only service 0 identifies a node)")
            return False
        return True
    if eid.startswith("dtn:"):
        if _DTN_EID.fullmatch(eid):
            return True
        if re.fullmatch(r"dtn://[^/]+/.+", eid):
            r.error(node, f"node {name!r} eid {eid} has a demux after the node name; expected "
                          f"{eid[:eid.index('/', 6) + 1]} (RFC 9171 4.2.5.1.1: a node id ends at '/')")
            return False
    r.error(node, f"node {name!r} eid {eid!r} is not a node endpoint id; expected ipn:N.0 (such as ipn:1.0) "
                  "or dtn://name/ (such as dtn://iss/)")
    return False


def _defaults(medium: str) -> DirectionParams:
    if medium == "serial":
        return DirectionParams(baud=DEFAULT_BAUD, bits_per_byte=FRAMINGS["8N1"])
    return DirectionParams(rate_bps=DEFAULT_ETHERNET_RATE)


def _graph(links: tuple[Link, ...]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for link in links:
        graph.setdefault(link.a, set()).add(link.b)
        graph.setdefault(link.b, set()).add(link.a)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in graph.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
