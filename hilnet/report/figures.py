"""Figures every report shows, derived once from the verdict and the log.

Per traffic stream, and per class of service (bulk, normal, expedited: the
same figures over every bundle of the class): delivered of injected, median
and max latency, median and max lateness against the earliest arrival the plan and the faults allow. Per bundle: the nodes it
went through. Per link: the last counters the controller recorded (or, if it
never wrote any, the drops the link itself reported). All times scenario ns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median_low

from hilnet.verdict import BundleRecord, CheckReport

#: classes of service, most urgent first: the order of the per-class rows
CLASSES = ("expedited", "normal", "bulk")


@dataclass(frozen=True, slots=True)
class StreamStats:
    name: str  # the stream's name, or the class's for a per-class row
    delivered: int
    injected: int
    latency_p50_ns: int | None  # median (lower middle) of the delivered bundles' latency
    latency_max_ns: int | None
    lateness_p50_ns: int | None  # median delivery minus plan's earliest arrival
    priority: str = "normal"  # the class of service of the stream (of the row's bundles)
    lateness_max_ns: int | None = None  # the latest delivery against the plan: does every bundle keep a bound?


def _stats(name: str, bundles: list[BundleRecord], delivered: int, injected: int, priority: str) -> StreamStats:
    lat = [b.latency_ns for b in bundles if b.latency_ns is not None]
    late = [b.lateness_ns for b in bundles if b.lateness_ns is not None]
    return StreamStats(
        name,
        delivered,
        injected,
        median_low(lat) if lat else None,
        max(lat) if lat else None,
        median_low(late) if late else None,
        priority,
        max(late) if late else None,
    )


@dataclass(frozen=True, slots=True)
class DirectionStats:
    """Counters of one link direction (``a->b``), as the link emulator counted them."""

    direction: str
    units_in: int | None
    bytes_in: int | None
    units_out: int | None
    bytes_out: int | None
    bits_flipped: int | None
    drops: Mapping[str, int]  # reason -> units dropped


@dataclass(frozen=True, slots=True)
class LinkStats:
    link: str
    directions: tuple[DirectionStats, ...]
    source: str  # "link-stats" (controller counters) or "drop-events" (counted from the log)


def stream_stats(report: CheckReport) -> tuple[StreamStats, ...]:
    """One row per traffic stream, in the order the streams first inject."""
    by_stream: dict[str, list[BundleRecord]] = {}
    for b in report.bundles:
        by_stream.setdefault(b.traffic, []).append(b)
    rows = []
    for name, bundles in by_stream.items():
        delivered, injected = report.streams.get(name, (sum(1 for b in bundles if b.deliveries), len(bundles)))
        rows.append(_stats(name, bundles, delivered, injected, bundles[0].priority))
    return tuple(rows)


def class_stats(report: CheckReport) -> tuple[StreamStats, ...]:
    """One row per class of service that has bundles, most urgent first (name = priority = the class)."""
    by_class: dict[str, list[BundleRecord]] = {}
    for b in report.bundles:
        by_class.setdefault(b.priority, []).append(b)
    order = [c for c in CLASSES if c in by_class] + sorted(c for c in by_class if c not in CLASSES)
    rows = []
    for c in order:
        bundles = by_class[c]
        rows.append(_stats(c, bundles, sum(1 for b in bundles if b.deliveries), len(bundles), c))
    return tuple(rows)


#: the stream column of a per-class row
ALL_STREAMS = "(all)"
#: the stream table's columns, as every report prints them
STREAM_HEADERS = (
    "stream",
    "class",
    "delivered",
    "median latency",
    "max latency",
    "median lateness vs plan",
    "max lateness vs plan",
)


def stream_table(report: CheckReport) -> tuple[tuple[str, StreamStats], ...]:
    """The stream table's rows as (stream column, figures): each stream, then each class over all streams."""
    return tuple((s.name, s) for s in stream_stats(report)) + tuple((ALL_STREAMS, c) for c in class_stats(report))


# Sightings that say where a bundle *is*. "acked" is logged by the sender after
# the next hop stored it, so following it would draw the bundle stepping back.
WHERE_EVENTS = frozenset(
    ("received", "stored", "forwarded", "delivered", "expired", "dropped", "refused", "security-failed")
)


def bundle_points(b: BundleRecord) -> tuple[tuple[int, str], ...]:
    """(scenario ns, node) points of the bundle's journey: its injection, then where it was seen."""
    if b.key is None:
        return ()
    seen = sorted((s for s in b.sightings if s.event in WHERE_EVENTS), key=lambda s: s.t_ns)
    return ((b.injected_ns, b.frm),) + tuple((s.t_ns, s.node) for s in seen)


def bundle_path(b: BundleRecord) -> tuple[str, ...]:
    """Nodes the bundle went through, in order, each stay once (``iss, tdrs-e, eac``)."""
    path: list[str] = []
    for _, node in bundle_points(b):
        if not path or path[-1] != node:
            path.append(node)
    return tuple(path)


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def link_stats(events: Iterable[Mapping]) -> tuple[LinkStats, ...]:
    """Per link: its last ``link-stats`` record, else its ``drop`` records counted by reason."""
    last: dict[str, Mapping] = {}
    drops: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    order: list[str] = []
    for e in events:
        src, kind = e.get("src"), e.get("event")
        if src == "controller" and kind == "link-stats" and isinstance(e.get("stats"), Mapping):
            link = str(e.get("link"))
            last[link] = e["stats"]
        elif src == "link" and kind == "drop":
            link = str(e.get("link"))
            drops[link][str(e.get("direction", "?"))][str(e.get("reason", "unknown"))] += 1
        else:
            continue
        if link not in order:
            order.append(link)
    out = []
    for link in order:
        if link in last:
            dirs = []
            for direction, st in last[link].items():
                if not isinstance(st, Mapping):
                    continue
                raw = st.get("drops")
                d = {str(k): v for k, v in raw.items() if _int(v) is not None} if isinstance(raw, Mapping) else {}
                dirs.append(
                    DirectionStats(
                        str(direction),
                        _int(st.get("units_in")),
                        _int(st.get("bytes_in")),
                        _int(st.get("units_out")),
                        _int(st.get("bytes_out")),
                        _int(st.get("bits_flipped")),
                        d,
                    )
                )
            out.append(LinkStats(link, tuple(dirs), "link-stats"))
        else:
            dirs = [DirectionStats(d, None, None, None, None, None, dict(c)) for d, c in sorted(drops[link].items())]
            out.append(LinkStats(link, tuple(dirs), "drop-events"))
    return tuple(out)
