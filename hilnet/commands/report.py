"""``hilnet report RUN_DIR``: rebuild a run's reports from its scenario.yaml and events.jsonl."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hilnet.controller.checks import check_run
from hilnet.errors import RunFolderError
from hilnet.report.console import format_summary
from hilnet.report.eventlog import read_events
from hilnet.report.meta import RunMeta
from hilnet.report.write import write_reports
from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit status tells.")
def command(run_dir: Path, quiet: bool) -> None:
    """Judge RUN_DIR again from its events.jsonl and rewrite summary.json,
    junit.xml, timeline.png and report.html.

    Exit status: 0 when every expectation holds, 1 when one fails, 2 when the
    folder, its scenario.yaml or its events.jsonl is missing or corrupt.
    """
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    scenario_file = run_dir / "scenario.yaml"
    if not scenario_file.is_file():
        raise RunFolderError(f"{scenario_file}: no such file; a run folder holds a copy of its scenario")
    scenario = load_scenario(scenario_file)
    log = read_events(run_dir / "events.jsonl")
    if not log.events:
        raise RunFolderError(f"{log.path}: no records; the run wrote nothing")
    if log.truncated and not quiet:
        click.echo(
            f"hilnet: warning: {log.path}: the last line was cut short (an interrupted run?) and is left out", err=True
        )
    plan = compile_plan(scenario)
    report = check_run(scenario, plan, log.events)
    meta = RunMeta.from_events(run_dir, scenario, log.events)
    write_reports(run_dir, scenario, plan, log.events, report, meta)
    if not quiet:
        click.echo(format_summary(report, meta))
    # sys.exit, not click's Exit: cli.main runs click with standalone_mode=False.
    sys.exit(0 if report.passed else 1)
