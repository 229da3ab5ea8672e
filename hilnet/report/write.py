"""Write every report of a run folder: what ``hilnet run`` does at the end and ``hilnet report`` redoes.

Order matters: the timeline is drawn first so that report.html can embed it.
Without matplotlib (a board install) the timeline is skipped and the page
says so; the other reports never need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from hilnet.report.atomic import write_bytes
from hilnet.report.html import write_html
from hilnet.report.junit import write_junit
from hilnet.report.meta import RunMeta
from hilnet.report.summary import write_summary
from hilnet.report.timeline import draw_timeline, matplotlib_available
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.verdict import CheckReport

SUMMARY, JUNIT, TIMELINE, HTML = "summary.json", "junit.xml", "timeline.png", "report.html"


def write_reports(
    run_dir: str | os.PathLike[str],
    scenario: Scenario,
    plan: Plan,
    events: Iterable[Mapping],
    report: CheckReport,
    meta: RunMeta | Mapping | None = None,
) -> list[Path]:
    """Write summary.json, junit.xml, timeline.png (if matplotlib is there) and report.html into ``run_dir``.

    ``plan`` is the compiled scenario the run replayed (kept in the signature so
    reports can show plan figures without recompiling). ``meta`` is a
    :class:`RunMeta`, or a mapping whose ``backend`` / ``seed`` override what
    :meth:`RunMeta.from_events` reads from the log and whose ``junit`` (a path)
    asks for a second copy of junit.xml there (``hilnet run --junit``); None
    reads everything from the log. Returns the paths written, in that order.
    """
    del plan  # the verdict already carries the plan's oracle; nothing else reads it yet
    events = list(events)
    folder = Path(run_dir)
    extra_junit = None
    if not isinstance(meta, RunMeta):
        given = dict(meta or {})
        meta = RunMeta.from_events(run_dir, scenario, events)
        overrides = {k: given[k] for k in ("backend", "seed") if given.get(k) is not None}
        meta = replace(meta, **overrides)
        extra_junit = given.get("junit")
    written = [write_summary(folder / SUMMARY, report, events, meta), write_junit(folder / JUNIT, report, meta)]
    if extra_junit:
        Path(extra_junit).parent.mkdir(parents=True, exist_ok=True)  # CI asks for reports/x.xml before it exists
        written.append(write_junit(extra_junit, report, meta))
    png: bytes | None = None
    note = ""
    if matplotlib_available():
        png = draw_timeline(scenario, events, report)
        written.append(write_bytes(folder / TIMELINE, png))
    else:
        note = "timeline.png was not drawn: matplotlib is not installed (pip install 'hilnet[controller]')."
    written.append(write_html(folder / HTML, scenario, events, report, meta, png, note))
    return written
