"""Reading a scenario's ``traffic:``, ``faults:`` and ``expect:`` sections."""

from __future__ import annotations

from collections import deque

from yaml.nodes import Node, ScalarNode

from hilnet.scenario.load_base import BuilderBase
from hilnet.scenario.model import Crash, Cut, ErrorBurst, Expect, Fault, Link, Traffic
from hilnet.scenario.reader import describe, did_you_mean, is_name
from hilnet.units import format_duration, parse_duration, parse_fraction, parse_size

TRAFFIC_KEYS = ("name", "from", "to", "start", "every", "count", "size", "lifetime", "priority")
FAULT_KEYS = ("at", "cut", "crash", "error-burst", "for", "restart-after", "bit-error-rate")
EXPECT_KEYS = ("delivered", "within", "within-plan", "duplicates", "intact", "lost")
PRIORITIES = ("bulk", "normal", "expedited")
DEFAULT_BURST_BER = 1e-4


class EventBuilder(BuilderBase):
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
                    r.error(
                        m["name"][1],
                        f"traffic name {given!r} is not a plain name; expected letters, digits, "
                        "'-', '_' or '.', starting with a letter",
                    )
                elif given is not None:
                    if given in names:
                        r.error(
                            m["name"][1],
                            f"traffic name {given!r} is already used (line {names[given]}); "
                            "expected each traffic entry to have its own name",
                        )
                    names[given] = m["name"][1].start_mark.line + 1
                    name = given
            what = f"traffic {name!r}"
            frm = self._node_ref(m["from"][1], f"{what} from") if "from" in m else None
            to = self._node_ref(m["to"][1], f"{what} to") if "to" in m else None
            if frm is not None and to is not None:
                if frm == to:
                    r.error(m["to"][1], f"{what} goes from {frm!r} to itself; expected another node")
                elif self.all_links_built and to not in _reachable(graph, frm):
                    r.error(
                        m["to"][1],
                        f"{what}: no path from {frm!r} to {to!r} in the link graph; expected "
                        "links that join them, directly or through other nodes",
                    )
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
                r.error(
                    m["start"][1],
                    f"{what} starts at clock.duration or after; expected a start before "
                    f"{format_duration(self.duration)}",
                )
                self.all_traffic_built = False
                continue
            if count is None and "count" not in m:
                # periodic without a count: as many as start before the run ends
                count = -(-(self.duration - start) // every) if every else 1
            if count is not None and every is not None and "count" in m:
                last = start + (count - 1) * every
                if last >= self.duration:
                    r.error(
                        m["count"][1],
                        f"{what}: the last of {count} injections falls at "
                        f"{format_duration(last)}, not before clock.duration "
                        f"({format_duration(self.duration)}); expected at most "
                        f"{-(-(self.duration - start) // every)}",
                    )
                    self.all_traffic_built = False
                    continue
            if None in (frm, to, count, size, lifetime) or frm == to:
                self.all_traffic_built = False
                continue
            out.append(
                Traffic(
                    name=name,
                    frm=frm,
                    to=to,
                    start_ns=start,
                    every_ns=every,
                    count=count,
                    size=size,
                    lifetime_ns=lifetime,
                    priority=priority,
                )
            )
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
                r.error(
                    item,
                    f"{what} has {' and '.join(given) if given else 'none of cut, crash, error-burst'}; "
                    "expected exactly one of cut: LINK, crash: NODE, error-burst: LINK",
                )
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
                    r.error(
                        target_node,
                        f"{what} {kind} {target!r} is not a link"
                        f"{did_you_mean(target, link_names)}; expected one of: "
                        f"{', '.join(link_names) or '(no links)'}",
                    )
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
                restart = r.unit(
                    m["restart-after"][1], f"{what} restart-after", parse_duration, "a duration such as 30s"
                )
            ber = DEFAULT_BURST_BER
            if kind == "error-burst" and "bit-error-rate" in m:
                ber = r.unit(
                    m["bit-error-rate"][1], f"{what} bit-error-rate", parse_fraction, "a fraction such as 1e-3"
                )
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
                        r.error(
                            target_node,
                            f"{what}: {target!r} is still down from the crash at "
                            f"{format_duration(other_at)} (line {line}); expected a crash "
                            "after its restart",
                        )
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
                r.error(node, f"expect delivered is {describe(node)}; expected {expected}")
            return None
        if isinstance(value, int):
            if value < 0 or (self.all_traffic_built and value > total):
                r.error(
                    node,
                    f"expect delivered is {value}, but the traffic injects {total} bundles; "
                    f"expected a count from 0 to {total}",
                )
                return None
            return value
        if isinstance(value, float) or (isinstance(value, str) and value.strip().endswith("%")):
            fraction = r.unit(node, "expect delivered", parse_fraction, expected)
            if fraction is not None and fraction == 0:
                r.error(node, f"expect delivered is 0%; expected a fraction above 0 ({expected})")
                return None
            return fraction
        r.error(node, f"expect delivered is {describe(node)}; expected {expected}")
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
            r.error(node, f"expect within-plan is {describe(node)}; expected {expected} (write 3x for a factor)")
            return None
        return r.unit(node, "expect within-plan", parse_duration, expected)


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
