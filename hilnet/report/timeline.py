"""``timeline.png``: a run at a glance, in minutes of scenario time.

Rows, top to bottom: one lane per link, then one row per node.

- Link lane: the scenario's up windows as green bars (the plan; a link with
  one-way windows shows a->b in the lane's upper half, b->a in its lower); under them a
  thin dark line where the emulator reported the link actually up (both
  directions); parameter changes as diamonds; cuts shaded red and error bursts
  shaded orange (from the controller's records, or the scenario's faults when
  the log has none).
- Node row: crashes as a red X with the node's downtime shaded.
- Bundles: each one a line through (time, node) from its injection through
  place it was seen (received, stored, forwarded, delivered; see
  :data:`~hilnet.report.figures.WHERE_EVENTS`), one colour per traffic
  stream; a dot where it was delivered, a black x where it was last seen if it
  was lost. Lines of one stream are nudged apart vertically so they stay apart.

matplotlib is imported inside the drawing functions only: it is in the
``controller`` extra, and a board install must import hilnet.report without it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hilnet.report.atomic import write_bytes
from hilnet.report.figures import bundle_points
from hilnet.scenario.model import Crash, Cut, ErrorBurst, Link, Scenario
from hilnet.units import format_duration, format_rate
from hilnet.verdict import CheckReport

if TYPE_CHECKING:  # matplotlib is optional at run time (see above)
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

NS_PER_MIN = 60_000_000_000
_M = 1 / NS_PER_MIN  # ns -> minutes, the figure's x unit
_PLAN_UP = "#7fc97f"
_ACTUAL_UP = "#1b5e20"
_CUT = "#e41a1c"
_BURST = "#ff7f00"
_CHANGE = "#377eb8"
_STREAM_COLOURS = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#2ca02c", "#d62728"]
# A bundle's line has the colour of its class of service: urgent traffic stands out.
_CLASS_COLOURS = {"expedited": "#d62728", "normal": "#1f77b4", "bulk": "#8c564b"}


def change_text(field: str, value: object) -> str:
    """A DirectionParams field and value as a person writes it: ``rate 2Mbit/s``, ``loss 3%``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{field} {value}"
    if field.endswith("_ns"):
        return f"{field[:-3]} {format_duration(int(value))}"
    if field == "rate_bps":
        return f"rate {format_rate(int(value))}"
    if field == "loss":
        return f"loss {value:.3g}" if value < 1e-4 else f"loss {value * 100:.3g}%"
    if field == "ber":
        return f"ber {value:g}"
    return f"{field} {value:g}"


def matplotlib_available() -> bool:
    """Whether timeline.png can be drawn here (matplotlib comes with ``hilnet[controller]``)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _spans(starts: list[tuple[int, str]], end_ns: int) -> dict[str, list[tuple[int, int]]]:
    """Start/stop records [(t, 'start:SUBJECT' | 'stop:SUBJECT')] -> subject -> [(start, end)]."""
    open_at: dict[str, int] = {}
    out: dict[str, list[tuple[int, int]]] = {}
    for t, what in sorted(starts):
        kind, subject = what.split(":", 1)
        if kind == "start":
            open_at.setdefault(subject, t)
        elif subject in open_at:
            out.setdefault(subject, []).append((open_at.pop(subject), t))
    for subject, t in open_at.items():
        out.setdefault(subject, []).append((t, max(t, end_ns)))
    return out


def fault_spans(scenario: Scenario, events: Iterable[Mapping], end_ns: int) -> dict[str, dict[str, list]]:
    """{"cut": {link: [(start, end)]}, "burst": {...}, "crash": {node: [...]}} in scenario ns.

    From the controller's records where the log has any of that kind (what
    happened), else from the scenario's faults (what was meant to happen).
    """
    marks: dict[str, list[tuple[int, str]]] = {"cut": [], "burst": [], "crash": []}
    pairs = {
        "cut": ("cut", "restore", "link"),
        "burst": ("burst-start", "burst-end", "link"),
        "crash": ("crash", "restart", "node"),
    }
    for e in events:
        if e.get("src") != "controller":
            continue
        for kind, (start, stop, field) in pairs.items():
            if e.get("event") in (start, stop) and isinstance(e.get(field), str):
                marks[kind].append((int(e.get("t_ns", 0)), f"{'start' if e['event'] == start else 'stop'}:{e[field]}"))
    planned: dict[str, list[tuple[int, str]]] = {"cut": [], "burst": [], "crash": []}
    for f in scenario.faults:
        if isinstance(f, Cut):
            planned["cut"] += [(f.at_ns, f"start:{f.link}"), (f.at_ns + f.for_ns, f"stop:{f.link}")]
        elif isinstance(f, ErrorBurst):
            planned["burst"] += [(f.at_ns, f"start:{f.link}"), (f.at_ns + f.for_ns, f"stop:{f.link}")]
        elif isinstance(f, Crash):
            planned["crash"].append((f.at_ns, f"start:{f.node}"))
            if f.restart_after_ns is not None:
                planned["crash"].append((f.at_ns + f.restart_after_ns, f"stop:{f.node}"))
    return {kind: _spans(marks[kind] or planned[kind], end_ns) for kind in marks}


def actual_up(events: Iterable[Mapping], end_ns: int) -> dict[str, list[tuple[int, int]]]:
    """Per link, the spans the emulator reported both directions up (scenario ns)."""
    state: dict[str, dict[str, bool]] = {}
    since: dict[str, int] = {}
    out: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        if e.get("src") != "link" or e.get("event") not in ("up", "down") or not isinstance(e.get("link"), str):
            continue
        link, t = e["link"], int(e.get("t_ns", 0))
        dirs = state.setdefault(link, {})
        was = bool(dirs) and all(dirs.values())
        dirs[str(e.get("direction", "a->b"))] = e["event"] == "up"
        now = all(dirs.values())
        if now and not was:
            since[link] = t
        elif was and not now:
            out.setdefault(link, []).append((since.pop(link), t))
    for link, t in since.items():
        out.setdefault(link, []).append((t, max(t, end_ns)))
    return out


def plan_bars(link: Link, duration_ns: int) -> list[tuple[float, float, list[tuple[int, int]], str | None]]:
    """A link lane's planned windows: (bottom, height) relative to the lane's centre, spans (scenario ns), label.

    One bar across the lane; with one-way windows, a->b in the upper half and b->a in
    the lower, each labelled.
    """
    if link.directed is None:
        return [(-0.25, 0.5, [(w.start_ns, w.end_ns) for w in link.windows] or [(0, duration_ns)], None)]
    fwd, bwd = link.directed
    return [
        (0.01, 0.24, [(w.start_ns, w.end_ns) for w in fwd], f"{link.a}->{link.b}"),
        (-0.25, 0.24, [(w.start_ns, w.end_ns) for w in bwd], f"{link.b}->{link.a}"),
    ]


@dataclass(frozen=True, slots=True)
class _Rows:
    """Where each lane sits: links on top, a gap, then nodes (matplotlib's y grows upwards, so count down)."""

    links: list[str]
    nodes: list[str]
    gap: float  # between the link lanes and the node rows
    rows: float
    y_link: dict[str, float]
    y_node: dict[str, float]


def _rows(scenario: Scenario) -> _Rows:
    links = [link.name for link in scenario.links]
    nodes = [n.name for n in scenario.nodes]
    gap = 0.5
    rows = len(links) + len(nodes) + gap
    y_link = {name: rows - i for i, name in enumerate(links)}
    y_node = {name: rows - len(links) - gap - i for i, name in enumerate(nodes)}
    return _Rows(links, nodes, gap, rows, y_link, y_node)


def draw_timeline(scenario: Scenario, events: Iterable[Mapping], report: CheckReport) -> bytes:
    """The timeline as PNG bytes. Needs matplotlib (raises ImportError without it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    events = list(events)
    rows = _rows(scenario)
    fig = Figure(figsize=(12, 1.6 + 0.55 * rows.rows), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    faults = fault_spans(scenario, events, report.end_ns)
    observed = actual_up(events, report.end_ns)
    for link in scenario.links:
        _draw_link(ax, link, rows.y_link[link.name], scenario.clock.duration_ns, faults, observed)
    _draw_nodes(ax, rows, faults)
    colour = _draw_bundles(ax, report, rows.y_node)
    _draw_frame(ax, scenario, report, rows)
    handles = _legend(scenario, report, faults, observed, colour)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_link(
    ax: Axes,
    link: Link,
    y: float,
    duration_ns: int,
    faults: dict[str, dict[str, list[tuple[int, int]]]],
    observed: dict[str, list[tuple[int, int]]],
) -> None:
    """One link lane: planned windows, observed up, cuts, error bursts and parameter changes."""
    for bottom, height, spans, label in plan_bars(link, duration_ns):
        ax.broken_barh([(a * _M, (b - a) * _M) for a, b in spans], (y + bottom, height), color=_PLAN_UP, zorder=2)
        if label:
            ax.annotate(
                label, (0, y + bottom + height / 2), xytext=(2, 0), textcoords="offset points", fontsize=6, va="center"
            )
    if link.name in observed:
        ax.broken_barh(
            [(a * _M, max(b - a, 1) * _M) for a, b in observed[link.name]],
            (y - 0.36, 0.08),
            color=_ACTUAL_UP,
            zorder=3,
        )
    for kind, colour, hatch in (("cut", _CUT, "//"), ("burst", _BURST, "..")):
        for a, b in faults[kind].get(link.name, []):
            ax.broken_barh(
                [(a * _M, (b - a) * _M)],
                (y - 0.4, 0.8),
                facecolor=colour,
                alpha=0.35,
                hatch=hatch,
                edgecolor=colour,
                zorder=4,
            )
    # Light time computed from positions changes every step: one label per pass, not a diamond a step.
    light = link.geometry is not None and link.geometry.light_time
    for p in link.geometry.passes if link.geometry is not None and light else ():
        ms = f"light time {p.light_min_ns / 1e6:.1f}-{p.light_max_ns / 1e6:.1f} ms"
        ax.annotate(
            ms, (p.start_ns * _M, y + 0.3), xytext=(3, 0), textcoords="offset points", fontsize=6, color=_CHANGE
        )
    for i, c in enumerate(c for c in link.changes if not (light and set(c.params) == {"delay_ns"})):
        ax.plot([c.at_ns * _M], [y + 0.33], marker="D", color=_CHANGE, markersize=6, zorder=5, linestyle="")
        text = ", ".join(change_text(k, v) for k, v in c.params.items())
        if c.direction != "both":
            text = f"{c.direction}: {text}"
        # alternate label heights: changes minutes apart would print over each other
        ax.annotate(
            text,
            (c.at_ns * _M, y + 0.33),
            xytext=(5, 1 + 8 * (i % 2)),
            textcoords="offset points",
            fontsize=7,
            color=_CHANGE,
            zorder=5,
        )


def _draw_nodes(ax: Axes, rows: _Rows, faults: dict[str, dict[str, list[tuple[int, int]]]]) -> None:
    """One row per node, with its crashes: a red X and the downtime shaded."""
    for node in rows.nodes:
        y = rows.y_node[node]
        ax.axhline(y, color="#cccccc", linewidth=0.8, zorder=1)
        for a, b in faults["crash"].get(node, []):
            ax.broken_barh([(a * _M, max(b - a, 1) * _M)], (y - 0.3, 0.6), facecolor=_CUT, alpha=0.2, zorder=2)
            ax.plot([a * _M], [y], marker="X", color=_CUT, markersize=11, zorder=6, linestyle="")


def _draw_bundles(ax: Axes, report: CheckReport, y_node: dict[str, float]) -> dict[str, str]:
    """Each bundle's path over the node rows, coloured by class; returns the colour of each traffic stream."""
    streams = {b.traffic: b.priority for b in report.bundles}
    colour = {
        s: _CLASS_COLOURS.get(p, _STREAM_COLOURS[i % len(_STREAM_COLOURS)]) for i, (s, p) in enumerate(streams.items())
    }
    seen_in_stream: dict[str, int] = {}
    for b in report.bundles:
        if b.key is None:
            continue
        i = seen_in_stream[b.traffic] = seen_in_stream.get(b.traffic, -1) + 1
        nudge = ((i % 9) - 4) * 0.035
        pts = [(t, n) for t, n in bundle_points(b) if n in y_node]
        xs = [t * _M for t, _ in pts]
        ys = [y_node[n] + nudge for _, n in pts]
        ax.plot(xs, ys, color=colour[b.traffic], linewidth=1.1, alpha=0.8, zorder=7, drawstyle="default")
        if b.delivered_ns is not None and b.to in y_node:
            ax.plot(
                [b.delivered_ns * _M],
                [y_node[b.to] + nudge],
                marker="o",
                markersize=4,
                color=colour[b.traffic],
                zorder=8,
                linestyle="",
            )
        elif b.fate == "lost" and pts:
            ax.plot([xs[-1]], [ys[-1]], marker="x", markersize=8, color="black", zorder=8, linestyle="")
    return colour


def _draw_frame(ax: Axes, scenario: Scenario, report: CheckReport, rows: _Rows) -> None:
    """The run's end, the lane labels, the axes and the title."""
    end_ns = max(scenario.clock.duration_ns, report.end_ns)
    links, nodes = rows.links, rows.nodes
    ax.axvline(report.end_ns * _M, color="#555555", linestyle="--", linewidth=1, zorder=1)
    ax.annotate(
        f"run end ({report.end_reason})",
        (report.end_ns * _M, rows.rows + 0.45),
        fontsize=7,
        color="#555555",
        ha="right",
        xytext=(-3, 0),
        textcoords="offset points",
    )
    ax.set_yticks(
        [rows.y_link[n] for n in links] + [rows.y_node[n] for n in nodes],
        [f"link {n}" for n in links] + [f"node {n}" for n in nodes],
    )
    ax.axhline(rows.rows - len(links) + (1 - rows.gap) / 2, color="#999999", linewidth=0.6, zorder=1)  # links | nodes
    ax.set_ylim(rows.rows - len(links) - len(nodes) - rows.gap + 0.3, rows.rows + 0.7)
    ax.set_xlim(0, end_ns * _M * 1.01)
    ax.set_xlabel("scenario time (minutes)")
    ax.set_title(
        f"{scenario.name}: {'PASS' if report.passed else 'FAIL'}, "
        f"{sum(1 for b in report.bundles if b.deliveries)} of {len(report.bundles)} bundles delivered"
    )
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    ax.set_axisbelow(True)


def _legend(
    scenario: Scenario,
    report: CheckReport,
    faults: dict[str, dict[str, list[tuple[int, int]]]],
    observed: dict[str, list[tuple[int, int]]],
    colour: dict[str, str],
) -> list[Artist]:
    """Legend entries for what the figure shows, and only that."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = [Patch(color=_PLAN_UP, label="link up (plan)")]
    if observed:
        handles.append(Line2D([], [], color=_ACTUAL_UP, linewidth=3, label="link up (observed)"))
    if any(link.changes and not (link.geometry and link.geometry.light_time) for link in scenario.links):
        handles.append(Line2D([], [], color=_CHANGE, marker="D", linestyle="", label="parameter change"))
    if faults["cut"]:
        handles.append(Patch(facecolor=_CUT, alpha=0.35, hatch="//", edgecolor=_CUT, label="cut"))
    if faults["burst"]:
        handles.append(Patch(facecolor=_BURST, alpha=0.35, hatch="..", edgecolor=_BURST, label="error burst"))
    if faults["crash"]:
        handles.append(Line2D([], [], color=_CUT, marker="X", linestyle="", markersize=9, label="agent crash"))
    classes = {b.traffic: b.priority for b in report.bundles}
    for s, c in colour.items():
        d, n = report.streams.get(s, (0, 0))
        handles.append(Line2D([], [], color=c, label=f"{s}, {classes.get(s, 'normal')} ({d}/{n} delivered)"))
    if any(b.deliveries for b in report.bundles):
        handles.append(Line2D([], [], color="grey", marker="o", linestyle="", markersize=4, label="delivered"))
    if any(b.fate == "lost" for b in report.bundles):
        handles.append(Line2D([], [], color="black", marker="x", linestyle="", label="lost (last seen)"))
    return handles


def write_timeline(path: str | Path, scenario: Scenario, events: Iterable[Mapping], report: CheckReport) -> Path:
    """Draw and write timeline.png at ``path``; returns the path. Needs matplotlib."""
    return write_bytes(path, draw_timeline(scenario, events, report))
