"""``report.html``: the whole run on one self-contained page.

Everything is inline (CSS in a ``<style>``, the timeline as a base64 ``data:``
URI) and nothing is fetched, so the file can be mailed, archived as a CI
artifact or opened offline. Every value from the scenario or the log passes
through ``html.escape``: a bundle tag or an agent's reason is data, not markup.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence, Set
from pathlib import Path

from hilnet.report.atomic import write_text
from hilnet.report.figures import STREAM_HEADERS, bundle_path, link_stats, stream_table
from hilnet.report.meta import RunMeta
from hilnet.report.text import clock, duration, signed
from hilnet.scenario.model import Scenario
from hilnet.verdict import CheckReport

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:bold}
.PASS{background:#2e7d32}.FAIL{background:#c62828}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecea}ul.fail{color:#c62828;margin:.3em 0}.meta{color:#555}
img{max-width:100%;border:1px solid #ddd}code{font-size:90%}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    headers: Sequence[str], rows: Iterable[tuple[Sequence[object], bool]], numeric: Set[int] = frozenset()
) -> str:
    """An HTML table; each row is (cells, bad) and a bad row is tinted."""
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for cells, bad in rows:
        out.append('<tr class="bad">' if bad else "<tr>")
        out.extend(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(cells)
        )
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _wall(ns: int) -> str:
    return f"{ns / 1e9:.6f}s"


Row = tuple[Sequence[object], bool]  # a table row: its cells, and whether it is tinted as bad


def render_html(
    scenario: Scenario,
    events: Iterable[Mapping],
    report: CheckReport,
    meta: RunMeta,
    timeline_png: bytes | None,
    timeline_note: str = "",
) -> str:
    """The report page as text. ``timeline_png`` None: ``timeline_note`` says why there is no image."""
    events = list(events)
    parts = [
        *_head(scenario, report, meta),
        *_expectations(report),
        *_streams(report),
        *_timeline(timeline_png, timeline_note),
        *_bundles(report),
        *_fidelity(report),
        *_link_statistics(events),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _head(scenario: Scenario, report: CheckReport, meta: RunMeta) -> list[str]:
    verdict = "PASS" if report.passed else "FAIL"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(verdict)}: {_e(meta.scenario_name)} (hilnet run)</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1><span class="verdict {verdict}">{verdict}</span> {_e(meta.scenario_name)}</h1>',
    ]
    if scenario.description:
        parts.append(f"<p>{_e(scenario.description)}</p>")
    parts.append(
        f'<p class="meta">seed {_e(meta.seed if meta.seed is not None else "-")} · backend {_e(meta.backend or "-")}'
        f" · scale {_e(f'{meta.scale:g}')} · wall {_e(duration(meta.wall_duration_ns))}"
        f" · ended <b>{_e(report.end_reason)}</b> at scenario {_e(clock(report.end_ns))}"
        f" of {_e(clock(meta.duration_ns))} · run folder <code>{_e(meta.run_dir)}</code></p>"
    )
    if meta.stacks:
        parts.append(f'<p class="meta">stacks: {_e(meta.stacks_line())}</p>')
    return parts


def _expectations(report: CheckReport) -> list[str]:
    parts = [
        "<h2>Expectations</h2>",
        _table(
            ("result", "expectation", "expected", "actual"),
            ((("PASS" if r.passed else "FAIL", r.name, r.expected, r.actual), not r.passed) for r in report.results),
        ),
    ]
    failures = [(r.name, f) for r in report.results for f in r.failures]
    if failures:
        parts.append('<ul class="fail">' + "".join(f"<li><b>{_e(n)}</b>: {_e(f)}</li>" for n, f in failures) + "</ul>")
    return parts


def _streams(report: CheckReport) -> list[str]:
    rows: list[Row] = [
        (
            (
                name,
                s.priority,
                f"{s.delivered}/{s.injected}",
                duration(s.latency_p50_ns),
                duration(s.latency_max_ns),
                signed(s.lateness_p50_ns),
                signed(s.lateness_max_ns),
            ),
            s.delivered < s.injected,
        )
        for name, s in stream_table(report)
    ]
    return ["<h2>Traffic streams</h2>", _table(STREAM_HEADERS, rows, numeric={3, 4, 5, 6})]


def _timeline(timeline_png: bytes | None, timeline_note: str) -> list[str]:
    if timeline_png is None:
        return ["<h2>Timeline</h2>", f"<p>{_e(timeline_note or 'no timeline image')}</p>"]
    data = base64.b64encode(timeline_png).decode("ascii")
    return [
        "<h2>Timeline</h2>",
        f'<img alt="timeline of links, faults and bundle paths" src="data:image/png;base64,{data}">',
    ]


def _bundles(report: CheckReport) -> list[str]:
    rows: list[Row] = []
    for b in report.bundles:
        last = b.last_seen
        seen = f"{last.event} at {last.node}, {clock(last.t_ns)}" if last else "-"
        fate = b.fate + (f" ×{b.deliveries}" if b.deliveries > 1 else "") + (" (corrupt)" if b.intact is False else "")
        cells = (
            b.tag,
            " → ".join(bundle_path(b)) or "-",
            clock(b.injected_ns),
            clock(b.delivered_ns) if b.delivered_ns is not None else "-",
            duration(b.latency_ns),
            clock(b.plan_arrival_ns) if b.plan_arrival_ns is not None else "-",
            signed(b.lateness_ns),
            fate,
            seen,
        )
        rows.append((cells, b.fate in ("lost", "dropped", "refused") or b.deliveries > 1 or b.intact is False))
    headers = ("tag", "path", "injected", "delivered", "latency", "plan arrival", "lateness", "fate", "last seen")
    return ["<h2>Bundles</h2>", _table(headers, rows, numeric={4, 6})]


def _fidelity(report: CheckReport) -> list[str]:
    f = report.fidelity
    parts = [
        "<h2>Schedule fidelity</h2>",
        f"<p>{len(f.edges)} scripted link changes; |applied − intended| p50 {_e(duration(f.p50_ns))}, "
        f"p99 {_e(duration(f.p99_ns))}, max {_e(duration(f.max_ns))}. Times are wall time since the "
        "run's start.</p>",
    ]
    if f.edges:
        rows: list[Row] = [
            ((e.link, e.direction, e.what, _wall(e.intended_ns), _wall(e.applied_ns), signed(e.error_ns)), False)
            for e in f.edges
        ]
        headers = ("link", "direction", "change", "intended", "applied", "error")
        parts.append(_table(headers, rows, numeric={3, 4, 5, 6}))
    return parts


def _link_statistics(events: list[Mapping]) -> list[str]:
    stats = link_stats(events)
    if not stats:
        return ["<h2>Link statistics</h2>", "<p>The log has no link statistics.</p>"]
    rows: list[Row] = []
    for ls in stats:
        for d in ls.directions:
            drops = ", ".join(f"{k} {v}" for k, v in sorted(d.drops.items())) or "none"
            cells = (
                ls.link,
                d.direction,
                _n(d.units_in),
                _n(d.bytes_in),
                _n(d.units_out),
                _n(d.bytes_out),
                _n(d.bits_flipped),
                drops,
            )
            rows.append((cells, False))
    headers = ("link", "direction", "units in", "bytes in", "units out", "bytes out", "bits flipped", "drops by reason")
    return ["<h2>Link statistics</h2>", _table(headers, rows, numeric={2, 3, 4, 5, 6})]


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def write_html(
    path: str | Path,
    scenario: Scenario,
    events: Iterable[Mapping],
    report: CheckReport,
    meta: RunMeta,
    timeline_png: bytes | None,
    timeline_note: str = "",
) -> Path:
    """Write report.html at ``path``; returns the path."""
    return write_text(path, render_html(scenario, events, report, meta, timeline_png, timeline_note))
