"""Run reports: console view and summary, summary.json, junit.xml, timeline.png, report.html.

``write_reports(run_dir, scenario, plan, events, report, meta)`` writes the
files of a run folder (see docs/report.md); :mod:`hilnet.report.console` has
the live view and the end-of-run summary. Nothing here imports matplotlib at
import time: only drawing the timeline needs it.
"""

from hilnet.report.write import write_reports

__all__ = ["write_reports"]
