"""Reading a scenario's ``traffic:``, ``faults:`` and ``expect:`` sections."""

from __future__ import annotations

from yaml.nodes import MappingNode, Node

from hilnet.bundle.codec import DEFAULT_MAX_SIZE
from hilnet.scenario.hops import MAX_HOP_LIMIT, Graph, default_hop_limit, hop_distances, link_graph
from hilnet.scenario.load_expect import ExpectBuilder
from hilnet.scenario.load_security import read_security
from hilnet.scenario.model import STACK_TAKES, Crash, Cut, ErrorBurst, Fault, Link, PowerCut, Priority, Traffic
from hilnet.scenario.overhead import MAX_BLOCKS_BYTES
from hilnet.scenario.reader import MappingEntries, did_you_mean, is_name
from hilnet.units import format_duration, format_size, parse_duration, parse_fraction, parse_size

TRAFFIC_KEYS = (
    "name",
    "from",
    "to",
    "start",
    "every",
    "count",
    "size",
    "lifetime",
    "priority",
    "ordinal",
    "security",
    "expect",
    "hop-limit",
)
MAX_ORDINAL = 254  # the class-of-service block's limit (ION: 0..254, higher first)
FAULT_KEYS = ("at", "cut", "crash", "error-burst", "power-cut", "for", "restart-after", "bit-error-rate")
FAULT_KINDS = ("cut", "crash", "error-burst", "power-cut")
PRIORITIES: tuple[Priority, ...] = ("bulk", "normal", "expedited")
DEFAULT_BURST_BER = 1e-4
#: Bundles a scenario may inject in all: the plan lists each (about 1 KB of memory and
#: 13 µs of planning apiece), so a runaway ``count``/``every`` is refused, not built.
MAX_INJECTIONS = 100_000


class EventBuilder(ExpectBuilder):
    def _traffic(self, node: Node, links: tuple[Link, ...]) -> tuple[Traffic, ...]:
        items = self.r.sequence(node, "traffic", "{from: iss, to: cologne, size: 300KiB, ...}")
        if items is None:
            self.all_traffic_built = False
            return ()
        graph = link_graph(links)
        names: dict[str, int] = {}  # traffic name -> line it was given on
        out: list[Traffic] = []
        for i, item in enumerate(items):
            traffic = self._traffic_entry(i, item, graph, names)
            if traffic is None:
                self.all_traffic_built = False
            elif self._within_plan_size(out, traffic, item):
                out.append(traffic)
            else:
                self.all_traffic_built = False
                break  # one error says it; the entries after it would only repeat it
        return tuple(out)

    def _within_plan_size(self, before: list[Traffic], traffic: Traffic, item: Node) -> bool:
        """Whether ``traffic`` keeps the scenario within :data:`MAX_INJECTIONS` bundles (else an error on it)."""
        total = sum(t.count for t in before) + traffic.count
        if total <= MAX_INJECTIONS:
            return True
        keys = {getattr(k, "value", None): v for k, v in item.value} if isinstance(item, MappingNode) else {}
        so_far = f" ({total:,} with the entries before it)" if before else ""
        self.r.error(
            keys.get("count") or keys.get("every") or item,
            f"traffic {traffic.name!r} injects {traffic.count:,} bundles{so_far}; expected at most "
            f"{MAX_INJECTIONS:,} in all, which a plan holds in memory (docs/scenario.md)",
        )
        return False

    def _traffic_entry(self, i: int, item: Node, graph: Graph, names: dict[str, int]) -> Traffic | None:
        """Traffic entry number ``i`` (0-based); None, its errors recorded, when it cannot be built."""
        r = self.r
        m = r.mapping(item, f"traffic #{i + 1}", TRAFFIC_KEYS, required=("from", "to", "size"))
        if m is None:
            return None
        name = self._traffic_name(m, f"traffic-{i + 1}", i, names)
        what = f"traffic {name!r}"
        frm, to = self._traffic_ends(m, what, graph)
        start = self._time(m["start"][1], f"{what} start") if "start" in m else 0
        every = self._span(m["every"][1], f"{what} every", "a period", "10m") if "every" in m else None
        count = r.integer(m["count"][1], f"{what} count", minimum=1) if "count" in m else None
        size = r.unit(m["size"][1], f"{what} size", parse_size, "a size such as 300KiB") if "size" in m else None
        if size == 0:
            r.error(m["size"][1], f"{what} size is 0; expected a payload of at least 1 byte")
            size = None
        elif size is not None and size + MAX_BLOCKS_BYTES > DEFAULT_MAX_SIZE:
            # Refused, not warned: no agent would store such a bundle, so every one would end lost.
            r.error(
                m["size"][1],
                f"{what} size {format_size(size)} makes bundles no node can store (an agent takes bundles of "
                f"up to {format_size(DEFAULT_MAX_SIZE)}); expected a payload of at most "
                f"{DEFAULT_MAX_SIZE - MAX_BLOCKS_BYTES} bytes (the rest is for bundle blocks), or the data split "
                "over several bundles",
            )
            size = None
        lifetime = self.duration
        if "lifetime" in m:
            lifetime = self._span(m["lifetime"][1], f"{what} lifetime", "a duration", "1h")
        priority: Priority = "normal"
        if "priority" in m:
            priority = r.choice(m["priority"][1], f"{what} priority", PRIORITIES) or "normal"
        ordinal = self._ordinal(m, what, priority)
        integrity, confidentiality = read_security(r, m["security"][1], what) if "security" in m else (None, None)
        if "security" in m:
            self._security_ends(m["security"][1], what, (frm, to))
        expect = self._stream_expect(m["expect"][1], what) if "expect" in m else None
        if start is None or self.duration is None:
            return None
        count = self._injections(m, what, start, self.duration, every, count)
        hop_limit = self._hop_limit(m, item, what, graph, frm, to)
        if frm is None or to is None or count is None or size is None or lifetime is None or frm == to:
            return None
        return Traffic(
            name=name,
            frm=frm,
            to=to,
            start_ns=start,
            every_ns=every,
            count=count,
            size=size,
            lifetime_ns=lifetime,
            priority=priority,
            ordinal=ordinal,
            integrity=integrity,
            confidentiality=confidentiality,
            expect=expect,
            hop_limit=hop_limit,
        )

    def _hop_limit(
        self, m: MappingEntries, item: Node, what: str, graph: Graph, frm: str | None, to: str | None
    ) -> int | None:
        """The entry's ``hop-limit`` (None: the plan's default); refused, at the key or else at the
        entry, when the shortest path between its ends takes more hops than its bundles may."""
        limit = None
        if "hop-limit" in m:
            node = m["hop-limit"][1]
            limit = self.r.integer(node, f"{what} hop-limit", minimum=1)
            if limit is not None and limit > MAX_HOP_LIMIT:
                self.r.error(node, f"{what} hop-limit is {limit}; expected 1 to {MAX_HOP_LIMIT} (RFC 9171 4.4.3)")
                return None
        if frm is None or to is None or not self.all_links_built:
            return limit
        hops = hop_distances(graph, frm).get(to)
        if hops is None or hops <= (MAX_HOP_LIMIT if limit is None else limit):
            return limit
        path = f"{what}: the shortest path from {frm!r} to {to!r} takes {hops} hops"
        if limit is None:
            self.r.error(
                item,
                f"{path}, more than any bundle may take (a hop limit is at most {MAX_HOP_LIMIT}); "
                f"expected nodes at most {MAX_HOP_LIMIT} hops apart",
            )
        else:
            self.r.error(
                m["hop-limit"][1],
                f"{path}, but its hop-limit is {limit}: every bundle would be dropped on the way; expected a "
                f"hop-limit of at least {hops} (or none: the plan then gives {default_hop_limit(graph, frm, to)})",
            )
        return limit

    def _security_ends(self, node: Node, what: str, ends: tuple[str | None, str | None]) -> None:
        """Refuse BPSec on a stream whose source or destination runs a stack hilnet gives no keys to."""
        for end in ends:
            stack = self.node_stacks.get(end or "", ("hilnet", None))[0]
            if "security" not in STACK_TAKES[stack]:
                self.r.error(
                    node,
                    f"{what} security: node {end!r} runs stack {stack}, which hilnet does not give BPSec keys; "
                    "expected security only between hilnet nodes (docs/stacks.md)",
                )
                return

    def _ordinal(self, m: MappingEntries, what: str, priority: Priority) -> int:
        """The traffic's ordinal (0 when absent or wrong; errors recorded)."""
        if "ordinal" not in m:
            return 0
        node = m["ordinal"][1]
        value = self.r.integer(node, f"{what} ordinal", minimum=0)
        if value is None:
            return 0
        if value > MAX_ORDINAL:
            self.r.error(node, f"{what} ordinal is {value}; expected a whole number from 0 to {MAX_ORDINAL}")
            return 0
        if priority != "expedited":
            self.r.error(node, f"{what} ordinal orders expedited traffic only; expected priority: expedited with it")
            return 0
        return value

    def _traffic_name(self, m: MappingEntries, default: str, i: int, names: dict[str, int]) -> str:
        if "name" not in m:
            return default
        r = self.r
        node = m["name"][1]
        given = r.text(node, f"traffic #{i + 1} name", "a name such as photos")
        if given is None:
            return default
        if not is_name(given):
            r.error(
                node,
                f"traffic name {given!r} is not a plain name; expected letters, digits, "
                "'-', '_' or '.', starting with a letter",
            )
            return default
        if given in names:
            r.error(
                node,
                f"traffic name {given!r} is already used (line {names[given]}); "
                "expected each traffic entry to have its own name",
            )
        names[given] = node.start_mark.line + 1
        return given

    def _traffic_ends(self, m: MappingEntries, what: str, graph: Graph) -> tuple[str | None, str | None]:
        """The ``from`` and ``to`` nodes, each None when wrong; a path between them must exist."""
        frm = self._node_ref(m["from"][1], f"{what} from") if "from" in m else None
        to = self._node_ref(m["to"][1], f"{what} to") if "to" in m else None
        if frm is not None and to is not None:
            if frm == to:
                self.r.error(m["to"][1], f"{what} goes from {frm!r} to itself; expected another node")
            elif self.all_links_built and to not in hop_distances(graph, frm):
                self.r.error(
                    m["to"][1],
                    f"{what}: no path from {frm!r} to {to!r} in the link graph; expected "
                    "links that join them, directly or through other nodes",
                )
        return frm, to

    def _injections(
        self, m: MappingEntries, what: str, start: int, duration: int, every: int | None, count: int | None
    ) -> int | None:
        """How many bundles the entry injects, all before ``duration`` (ns); None when they do not fit."""
        if start >= duration:
            self.r.error(
                m["start"][1],
                f"{what} starts at clock.duration or after; expected a start before {format_duration(duration)}",
            )
            return None
        if "count" not in m:
            # periodic without a count: as many as start before the run ends
            return -(-(duration - start) // every) if every else 1
        if count is not None and every is not None:
            last = start + (count - 1) * every
            if last >= duration:
                self.r.error(
                    m["count"][1],
                    f"{what}: the last of {count} injections falls at "
                    f"{format_duration(last)}, not before clock.duration "
                    f"({format_duration(duration)}); expected at most "
                    f"{-(-(duration - start) // every)}",
                )
                return None
        return count

    def _faults(self, node: Node, links: tuple[Link, ...]) -> tuple[Fault, ...]:
        items = self.r.sequence(node, "faults", "{at: 20m, cut: LINK, for: 5m} and the like")
        if items is None:
            return ()
        out: list[Fault] = []
        crashes: dict[str, list[tuple[int, int | None, int]]] = {}  # node -> (at, restart after, line)
        for i, item in enumerate(items):
            fault = self._fault(f"fault #{i + 1}", item, crashes)
            if fault is not None:
                out.append(fault)
        out.sort(key=lambda f: f.at_ns)
        return tuple(out)

    def _fault(self, what: str, item: Node, crashes: dict[str, list[tuple[int, int | None, int]]]) -> Fault | None:
        """One fault entry; None, its errors recorded, when it cannot be built."""
        r = self.r
        m = r.mapping(item, what, FAULT_KEYS, required=("at",))
        if m is None:
            return None
        given = [k for k in FAULT_KINDS if k in m]
        if len(given) != 1:
            r.error(
                item,
                f"{what} has {' and '.join(given) if given else 'none of cut, crash, error-burst, power-cut'}; "
                "expected exactly one of cut: LINK, crash: NODE, error-burst: LINK, power-cut: NODE",
            )
            return None
        kind = given[0]
        allowed = {
            "cut": ("for",),
            "crash": ("restart-after",),
            "error-burst": ("for", "bit-error-rate"),
            "power-cut": ("for",),
        }[kind]
        bad = [k for k in ("for", "restart-after", "bit-error-rate") if k in m and k not in allowed]
        for k in bad:
            r.error(m[k][0], f"{what}: {kind} does not take {k!r}; expected {', '.join(allowed)}")
        at = self._time(m["at"][1], f"{what} at") if "at" in m else None
        # With a key that does not belong, the rest is still read for its errors, but nothing is built.
        if kind == "crash":
            return self._crash(m, what, item, at, crashes, refused=bool(bad))
        if kind == "power-cut":
            return self._power_cut(m, what, item, at, refused=bool(bad))
        return self._link_fault(kind, m, what, item, at, refused=bool(bad))

    def _link_fault(
        self, kind: str, m: MappingEntries, what: str, item: Node, at: int | None, *, refused: bool
    ) -> Fault | None:
        """A ``cut`` or an ``error-burst`` of a link."""
        r = self.r
        target_node = m[kind][1]
        target = r.text(target_node, f"{what} {kind}", "a link name")
        if target is not None and target not in self.link_names:
            r.error(
                target_node,
                f"{what} {kind} {target!r} is not a link"
                f"{did_you_mean(target, self.link_names)}; expected one of: "
                f"{', '.join(self.link_names) or '(no links)'}",
            )
            target = None
        span = None
        if "for" not in m:
            r.error(item, f"{what} {kind} lacks 'for'; expected how long it lasts, such as for: 5m")
        else:
            span = r.unit(m["for"][1], f"{what} for", parse_duration, "a duration such as 5m")
            if span == 0:
                r.error(m["for"][1], f"{what} for is 0; expected a duration above 0")
                span = None
        ber: float | None = DEFAULT_BURST_BER
        if kind == "error-burst" and "bit-error-rate" in m:
            ber = r.unit(m["bit-error-rate"][1], f"{what} bit-error-rate", parse_fraction, "a fraction such as 1e-3")
        if refused or at is None or target is None or span is None:
            return None
        if kind == "cut":
            return Cut(at_ns=at, link=target, for_ns=span)
        return None if ber is None else ErrorBurst(at_ns=at, link=target, for_ns=span, ber=ber)

    def _power_cut(self, m: MappingEntries, what: str, item: Node, at: int | None, *, refused: bool) -> Fault | None:
        """A ``power-cut`` of the board that plays a node: needs a bench with power commands (hilnet.bench.pairing)."""
        target = self._node_ref(m["power-cut"][1], f"{what} power-cut")
        span = None
        if "for" not in m:
            self.r.error(item, f"{what} power-cut lacks 'for'; expected how long the power stays off, such as for: 2m")
        else:
            span = self.r.unit(m["for"][1], f"{what} for", parse_duration, "a duration such as 2m")
            if span == 0:
                self.r.error(m["for"][1], f"{what} for is 0; expected a duration above 0")
                span = None
        if refused or at is None or target is None or span is None:
            return None
        mark = item.start_mark
        return PowerCut(at_ns=at, node=target, for_ns=span, line=mark.line + 1, col=mark.column + 1)

    def _crash(
        self,
        m: MappingEntries,
        what: str,
        item: Node,
        at: int | None,
        crashes: dict[str, list[tuple[int, int | None, int]]],
        *,
        refused: bool,
    ) -> Crash | None:
        """A ``crash`` of a node's agent, which must be up again (restarted) before it can crash again."""
        target_node = m["crash"][1]
        target = self._node_ref(target_node, f"{what} crash")
        restart = None
        if "restart-after" in m:
            restart = self.r.unit(
                m["restart-after"][1], f"{what} restart-after", parse_duration, "a duration such as 30s"
            )
            if restart is None:
                return None
        if refused or at is None or target is None:
            return None
        for other_at, other_restart, line in crashes.get(target, []):
            back = None if other_restart is None else other_at + other_restart
            if other_at <= at and (back is None or at < back):
                self.r.error(
                    target_node,
                    f"{what}: {target!r} is still down from the crash at "
                    f"{format_duration(other_at)} (line {line}); expected a crash "
                    "after its restart",
                )
                return None
        crashes.setdefault(target, []).append((at, restart, item.start_mark.line + 1))
        mark = item.start_mark
        return Crash(at_ns=at, node=target, restart_after_ns=restart, line=mark.line + 1, col=mark.column + 1)
