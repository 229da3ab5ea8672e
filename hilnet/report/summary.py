"""``summary.json``: the verdict of a run for machines (CI dashboards, scripts, diffs).

Shape (format 1)::

    {"format": 1, "scenario": NAME, "passed": BOOL, "seed": INT|null, "backend": STR|null,
     "placement": {NODE: "board B (ssh DEST)"|"virtual"}, "stacks": {NODE: "hilnet"|"ion"}, "run_dir": PATH, "end_reason": "settled"|..., "end_ns": INT, "wall_duration_ns": INT,
     "results":  [{"name", "passed", "expected", "actual", "failures": [STR]}],
     "streams":  {NAME: {"priority", "delivered", "injected", "latency_p50_ns", "latency_max_ns",
                         "lateness_p50_ns", "lateness_max_ns"}},
     "classes":  {"expedited"|"normal"|"bulk": {the same figures over every bundle of the class}},
     "bundles":  [{"tag", "traffic", "priority", "from", "to", "key", "size", "injected_ns", "delivered_ns",
                   "deliveries", "latency_ns", "plan_arrival_ns", "lateness_ns", "fate", "intact",
                   "stored_at", "path", "last_seen": {"node", "event", "t_ns"}|null,
                   "dropped": {"node", "reason", "t_ns"}|null}],
     "fidelity": {"edges": INT, "p50_ns", "p99_ns", "max_ns", "remote_ports": [...]},
     "links":    {LINK: {DIRECTION: {"units_in", ..., "drops": {REASON: INT}}}}}

Times ending ``_ns`` are scenario nanoseconds, except the fidelity figures and
``wall_duration_ns``, which are wall nanoseconds (the link engine's own time).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hilnet.report.atomic import write_text
from hilnet.report.figures import StreamStats, bundle_path, class_stats, link_stats, stream_stats
from hilnet.report.meta import RunMeta
from hilnet.verdict import BundleRecord, CheckReport

FORMAT = 1


def _placement(events: Iterable[Mapping]) -> dict[str, str]:
    """Node -> where it ran ("board B (ssh DEST)" or "virtual"), from the run-start record."""
    for e in events:
        if e.get("src") == "controller" and e.get("event") == "run-start":
            placed = e.get("placement")
            return {str(k): str(v) for k, v in placed.items()} if isinstance(placed, Mapping) else {}
    return {}


def build_summary(report: CheckReport, events: Iterable[Mapping], meta: RunMeta) -> dict[str, Any]:
    """The summary.json document as plain JSON values."""
    f = report.fidelity
    return {
        "format": FORMAT,
        "scenario": meta.scenario_name,
        "passed": report.passed,
        "seed": meta.seed,
        "backend": meta.backend,
        "placement": _placement(events),
        "stacks": dict(meta.stacks),
        "run_dir": meta.run_dir,
        "end_reason": report.end_reason,
        "end_ns": report.end_ns,
        "wall_duration_ns": meta.wall_duration_ns,
        "results": [
            {
                "name": r.name,
                "passed": r.passed,
                "expected": r.expected,
                "actual": r.actual,
                "failures": list(r.failures),
            }
            for r in report.results
        ],
        "streams": {s.name: _figures(s) for s in stream_stats(report)},
        "classes": {s.name: _figures(s) for s in class_stats(report)},
        "bundles": [_bundle(b) for b in report.bundles],
        "fidelity": {
            "edges": len(f.edges),
            "p50_ns": f.p50_ns,
            "p99_ns": f.p99_ns,
            "max_ns": f.max_ns,
            "remote_ports": [
                {"link": r.link, "end": r.end, "server": r.server, "rtt_us": r.rtt_us, "rttvar_us": r.rttvar_us}
                for r in f.remote
            ],
        },
        "links": _links(events),
    }


def _figures(s: StreamStats) -> dict[str, Any]:
    return {
        "priority": s.priority,
        "delivered": s.delivered,
        "injected": s.injected,
        "latency_p50_ns": s.latency_p50_ns,
        "latency_max_ns": s.latency_max_ns,
        "lateness_p50_ns": s.lateness_p50_ns,
        "lateness_max_ns": s.lateness_max_ns,
    }


def _bundle(b: BundleRecord) -> dict[str, Any]:
    last, drop = b.last_seen, b.dropped
    return {
        "tag": b.tag,
        "traffic": b.traffic,
        "priority": b.priority,
        "from": b.frm,
        "to": b.to,
        "key": b.key,
        "size": b.size,
        "injected_ns": b.injected_ns,
        "delivered_ns": b.delivered_ns,
        "deliveries": b.deliveries,
        "latency_ns": b.latency_ns,
        "plan_arrival_ns": b.plan_arrival_ns,
        "lateness_ns": b.lateness_ns,
        "fate": b.fate,
        "intact": b.intact,
        "stored_at": list(b.stored_at),
        "path": list(bundle_path(b)),
        "last_seen": None if last is None else {"node": last.node, "event": last.event, "t_ns": last.t_ns},
        # dropped for good by an agent, or (fate refused) not taken in by its source
        "dropped": None if drop is None else {"node": drop.node, "reason": drop.reason, "t_ns": drop.t_ns},
    }


def _links(events: Iterable[Mapping]) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        ls.link: {
            d.direction: {
                "units_in": d.units_in,
                "bytes_in": d.bytes_in,
                "units_out": d.units_out,
                "bytes_out": d.bytes_out,
                "bits_flipped": d.bits_flipped,
                "drops": dict(d.drops),
            }
            for d in ls.directions
        }
        for ls in link_stats(events)
    }


def write_summary(path: str | Path, report: CheckReport, events: Iterable[Mapping], meta: RunMeta) -> Path:
    """Write summary.json at ``path``; returns the path."""
    text = json.dumps(build_summary(report, events, meta), indent=2, ensure_ascii=False) + "\n"
    return write_text(path, text)
