"""A :class:`~hilnet.scenario.plan.Plan` for people (a text table) and for programs (JSON).

Both views hold the same facts; the JSON keeps exact integers (ns, bytes, bit/s)
where the table rounds them for reading.
"""

from __future__ import annotations

from typing import Any

from hilnet.scenario.actions import (
    Action,
    BurstStart,
    CrashAgent,
    CutLink,
    InjectBundle,
    LinkChange,
    LinkDown,
    LinkUp,
    PowerOff,
)
from hilnet.scenario.geometry.positions import LinkGeometry
from hilnet.scenario.geometry.view import HEADERS as PASS_HEADERS
from hilnet.scenario.geometry.view import geometry_json, pass_rows
from hilnet.scenario.plan import Plan
from hilnet.units import format_duration, format_rate, format_size, scenario_to_wall_ns


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """A JSON-ready dict: times in ns, sizes in bytes, rates in bytes/s."""

    def contact(c: Any) -> dict[str, Any]:
        return {"from": c.frm, "to": c.to, **{k: getattr(c, k) for k in ("start_ns", "end_ns", "rate", "owlt_ns")}}

    return {
        "name": plan.name,
        "scale": plan.scale,
        "compress": plan.compress,
        "duration_ns": plan.duration_ns,
        "wall_links": _wall_links_json(plan),
        "actions": [
            {
                "at_ns": a.at_ns,
                "wall_ns": a.wall_ns,
                "kind": a.kind,
                "subject": a.subject,
                "details": _jsonable(action_details(a)),
            }
            for a in plan.actions
        ],
        "contacts": [contact(c) for c in plan.contacts],
        "wall_contacts": [contact(c) for c in plan.wall_contacts],
        "capacities": [
            {
                "link": c.link,
                "from": c.frm,
                "to": c.to,
                "start_ns": c.start_ns,
                "end_ns": c.end_ns,
                "wall_ns": c.wall_ns,
                "goodput_bytes_per_s": round(c.goodput, 3),
                "capacity_bytes": c.capacity_bytes,
            }
            for c in plan.capacities
        ],
        "loads": [
            {
                "link": lo.link,
                "from": lo.frm,
                "to": lo.to,
                "bundles": lo.bundles,
                "offered_bytes": lo.offered_bytes,
                "capacity_bytes": lo.capacity_bytes,
                "classes": {
                    c.priority: {"offered_bytes": c.offered_bytes, "capacity_bytes": c.capacity_bytes}
                    for c in lo.by_class
                },
            }
            for lo in plan.loads
        ],
        "routes": _routes_json(plan),
        "warnings": list(plan.warnings),
        "geometry": geometry_json(plan.geometry, plan.epoch_unix_ns),
    }


def _wall_links_json(plan: Plan) -> list[dict[str, Any]]:
    """Each link direction's physics as written and as the wall clock runs them."""
    return [
        {
            "link": w.link,
            "from": w.frm,
            "to": w.to,
            "medium": w.medium,
            "delay_ns": w.delay_ns,
            "wall_delay_ns": w.wall_delay_ns,
            "jitter_ns": w.jitter_ns,
            "wall_jitter_ns": w.wall_jitter_ns,
            ("baud" if w.medium == "serial" else "rate_bps"): w.pace,
            ("wall_baud" if w.medium == "serial" else "wall_rate_bps"): w.wall_pace,
        }
        for w in plan.wall_links
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):  # a GilbertElliott model in a change
        return {f: _jsonable(getattr(value, f)) for f in value.__dataclass_fields__}
    return value


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return out


def action_details(a: Action) -> dict[str, Any]:
    """The kind-specific fields of ``a`` as ``hilnet plan --json`` names them (docs/scenario.md)."""
    if isinstance(a, (LinkUp, LinkDown)):
        way = {} if a.direction == "both" else {"direction": a.direction}
        if a.window_start_ns is None:
            return {"window": "always", **way} if isinstance(a, LinkUp) else way
        return {"window_start_ns": a.window_start_ns, "window_end_ns": a.window_end_ns, **way}
    if isinstance(a, LinkChange):
        return {"direction": a.direction, "params": dict(a.params)}
    if isinstance(a, InjectBundle):
        return {
            "seq": a.seq,
            "from": a.frm,
            "to": a.to,
            "size": a.size,
            "lifetime_ns": a.lifetime_ns,
            "priority": a.priority,
            "ordinal": a.ordinal,
        } | {k: v for k, v in (("integrity", a.integrity), ("confidentiality", a.confidentiality)) if v}
    if isinstance(a, (CutLink, PowerOff)):
        return {"for_ns": a.for_ns}
    if isinstance(a, CrashAgent):
        return {"restart_after_ns": a.restart_after_ns}
    if isinstance(a, BurstStart):
        return {"for_ns": a.for_ns, "ber": a.ber}
    return {}  # restore, restart, burst-end: the kind says it all


def fold_light_time(
    actions: tuple[Action, ...], geometry: tuple[tuple[str, LinkGeometry], ...]
) -> tuple[list[tuple[Action, str]], int]:
    """(action, details) rows with light time's per-step delay changes folded into the window they
    belong to (its link-up says the range of them), and how many were folded; --json keeps them all."""
    light = {name: g for name, g in geometry if g.light_time}
    rows: list[tuple[Action, str]] = []
    folded = 0
    for a in actions:
        g = light.get(a.subject)
        if g is not None and isinstance(a, LinkChange) and set(a.params) == {"delay_ns"}:
            folded += 1
            continue
        details = _details(a)
        if g is not None and isinstance(a, LinkUp):
            p = next((p for p in g.passes if p.start_ns == a.at_ns), None)
            if p is not None:
                ms = f"{p.light_min_ns / 1e6:.3f}-{p.light_max_ns / 1e6:.3f} ms"
                details = f"{details + '; ' if details else ''}light time {ms}, every {format_duration(g.step_ns)}"
        rows.append((a, details))
    return rows, folded


def _details(a: Action) -> str:
    if isinstance(a, InjectBundle):
        ordinal = f" ordinal {a.ordinal}" if a.ordinal else ""
        secured = " ".join(s for s in (a.integrity, a.confidentiality) if s)
        return (
            f"#{a.seq + 1} {a.frm}->{a.to} {format_size(a.size)} lifetime {format_duration(a.lifetime_ns)} {a.priority}"
            + ordinal
            + (f" {secured}" if secured else "")
        )
    if isinstance(a, LinkChange):
        params = ", ".join(f"{k}={_show(k, v)}" for k, v in a.params.items())
        return f"{a.direction}: {params}"
    if isinstance(a, (LinkUp, LinkDown)) and a.direction != "both":
        return f"{a.direction} only"
    if isinstance(a, (CutLink, PowerOff)):
        return f"for {format_duration(a.for_ns)}"
    if isinstance(a, BurstStart):
        return f"for {format_duration(a.for_ns)}, bit-error-rate {a.ber:g}"
    if isinstance(a, CrashAgent):
        after = a.restart_after_ns
        return "no restart" if after is None else f"restart after {format_duration(after)}"
    return ""


def _show(field: str, value: Any) -> str:
    if field.endswith("_ns") and isinstance(value, int):
        return format_duration(value)
    if field == "rate_bps" and isinstance(value, int):
        return format_rate(value)
    if field == "queue_bytes" and isinstance(value, int):
        return format_size(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_plan(plan: Plan) -> str:
    """The plan as a readable text report: timeline, contacts with capacity, load, warnings."""
    out = _wall_links(plan)
    shown, folded = fold_light_time(plan.actions, plan.geometry)
    out.append(
        f"timeline ({len(plan.actions)} actions{f'; {folded} light-time steps folded into their windows' if folded else ''})"
    )
    out += _table(
        ["scenario", "wall", "action", "subject", "details"],
        [[format_duration(a.at_ns), format_duration(a.wall_ns), a.kind, a.subject, details] for a, details in shown],
    )
    out += ["", f"contacts ({len(plan.contacts)}, one-way; capacity after framing overhead, in wall time)"]
    out += _table(
        ["from", "to", "link", "scenario window", "wall", "goodput", "owlt", "capacity"],
        [
            [
                c.frm,
                c.to,
                c.link,
                f"{format_duration(c.start_ns)}-{format_duration(c.end_ns)}",
                format_duration(c.wall_ns),
                f"{format_size(round(c.goodput))}/s",
                format_duration(wc.owlt_ns),
                format_size(c.capacity_bytes),
            ]
            for c, wc in zip(plan.capacities, plan.wall_contacts)
        ],
    )
    if plan.geometry:
        out += ["", "computed windows (from positions: elevation in degrees for ground passes; light time one way)"]
        out += _table(PASS_HEADERS, pass_rows(plan.geometry, plan.epoch_unix_ns))
    out += _routes_table(plan)
    out += ["", "load per link direction (bundle bytes offered vs capacity from the first injection on)"]
    out += _table(
        ["link", "direction", "bundles", "offered", "capacity", "use"],
        [
            [
                lo.link,
                f"{lo.frm}->{lo.to}",
                str(lo.bundles),
                format_size(lo.offered_bytes),
                format_size(lo.capacity_bytes),
                f"{100 * lo.offered_bytes / lo.capacity_bytes:.0f}%" if lo.capacity_bytes else "-",
            ]
            for lo in plan.loads
        ],
    )
    out += _class_loads(plan)
    out.append("")
    if plan.warnings:
        out.append(f"warnings ({len(plan.warnings)})")
        out += [f"  ! {w}" for w in plan.warnings]
    else:
        out.append("no warnings: the traffic fits its windows")
    return "\n".join(out)


def _wall_links(plan: Plan) -> list[str]:
    """The head of :func:`render_plan` and its "links in wall terms" table: each direction as written and as run."""
    top = [
        f"plan {plan.name}: {format_duration(plan.duration_ns)} of scenario time at scale {plan.scale:g} "
        f"= {format_duration(scenario_to_wall_ns(plan.duration_ns, plan.scale))} of wall time",
        "",
    ]
    if plan.compress == "all":
        head = (
            f"links in wall terms (compress: all: delay and jitter / {plan.scale:g}, "
            f"rate and baud x {plan.scale:g}; changes alike)"
        )
    else:
        head = "links in wall terms (compress: schedule: delay, jitter, rate and baud run as written)"
    rows = [
        [
            w.link,
            f"{w.frm}->{w.to}",
            format_duration(w.delay_ns) + (f" ±{format_duration(w.jitter_ns)}" if w.jitter_ns else ""),
            format_duration(w.wall_delay_ns) + (f" ±{format_duration(w.wall_jitter_ns)}" if w.wall_jitter_ns else ""),
            _pace(w.medium, w.pace),
            _pace(w.medium, w.wall_pace),
        ]
        for w in plan.wall_links
    ]
    return [*top, head, *_table(["link", "direction", "delay", "wall delay", "rate", "wall rate"], rows), ""]


def _pace(medium: str, value: int) -> str:
    return f"{value} baud" if medium == "serial" else format_rate(value)


def _class_loads(plan: Plan) -> list[str]:
    """The per-class load table of :func:`render_plan`."""
    out = ["", "load per class of service (a class has what the classes above it leave, as ION's CGR books it)"]
    return out + _table(
        ["link", "direction", "class", "offered", "capacity left", "use"],
        [
            [
                lo.link,
                f"{lo.frm}->{lo.to}",
                c.priority,
                format_size(c.offered_bytes),
                format_size(c.capacity_bytes),
                f"{100 * c.offered_bytes / c.capacity_bytes:.0f}%" if c.capacity_bytes else "-",
            ]
            for lo in plan.loads
            for c in lo.by_class
        ],
    )


def hop_limits(plan: Plan) -> dict[str, int | None]:
    """Traffic name -> the hop limit its bundles carry."""
    return {a.traffic: a.hop_limit for a in plan.actions if isinstance(a, InjectBundle)}


def _routes_json(plan: Plan) -> list[dict[str, Any]]:
    limits = hop_limits(plan)
    return [
        {"traffic": r.traffic, "path": list(r.path), "links": list(r.links), "hop_limit": limits.get(r.traffic)}
        for r in plan.routes
    ]


def _routes_table(plan: Plan) -> list[str]:
    limits = hop_limits(plan)
    rows = [
        [r.traffic, str(len(r.path) - 1), str(limits.get(r.traffic) or ""), " -> ".join(r.path)] for r in plan.routes
    ]
    heading = "routes (hop limit: each bundle's, from the traffic's hop-limit or the plan's default)"
    return ["", heading, *_table(["traffic", "hops", "hop limit", "path"], rows)]
