"""``hilnet run``: replay a scenario on a testbed and check store-and-forward delivery."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from hilnet.controller.run import RunResult


@click.command(name="run")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option(
    "--backend",
    type=click.Choice(["auto", "loopback", "netns"]),
    default="auto",
    show_default=True,
    help="Where to run: netns when root on Linux (auto), else loopback.",
)
@click.option(
    "--bench",
    type=click.Path(dir_okay=False),
    help="Run on real boards: a bench file mapping nodes to boards (docs/bench.md); unmapped nodes run here.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: runs/<time>-<name>].")
@click.option("--force", is_flag=True, help="With --out: empty an existing run folder first (else it is refused).")
@click.option("--scale", type=float, help="Override clock.scale (scenario seconds per wall second).")
@click.option("--seed", type=int, help="Override the scenario's seed; the same seed replays the same losses.")
@click.option(
    "--until-settled/--full-duration",
    default=True,
    show_default=True,
    help="Stop once every bundle is delivered or expired, or run the whole clock.duration.",
)
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write junit.xml here.")
@click.option("--pcap", is_flag=True, help="Capture every link end into the run folder's pcap/.")
@click.option("-q", "--quiet", is_flag=True, help="No live progress, only the verdict.")
@click.option("--json", "json_out", is_flag=True, help="Print summary.json on stdout.")
@click.option(
    "--agents",
    type=click.Choice(["auto", "process", "hosted"]),
    default="auto",
    show_default=True,
    help="Virtual nodes' agents: a process each, or many per agent host process (auto: hosted from 20 nodes on loopback).",
)
def command(scenario, backend, bench, out_dir, force, scale, seed, until_settled, junit, pcap, quiet, json_out, agents):
    """Replay SCENARIO on virtual links (or a bench of boards) and check delivery.

    Exit 0 when every expectation holds, 1 when one fails, 2 for bad input
    or a testbed that could not be built or broke during the run.
    """
    from hilnet.controller.run import RunOptions, run
    from hilnet.errors import InputError

    if force and not out_dir:
        raise InputError("--force empties the run folder given with --out DIR; give --out too")
    if bench and backend != "auto":
        raise InputError(f"--bench runs on the bench backend; drop --backend {backend}")
    options = RunOptions(
        backend=None if backend == "auto" else backend,
        bench=bench,
        out_dir=out_dir,
        force=force,
        scale=scale,
        seed=seed,
        pcap=pcap,
        until_settled=until_settled,
        quiet=quiet,
        junit=junit,
        agents=agents,
    )
    progress = None
    view = None
    if not quiet and not json_out:
        from hilnet.report.console import LiveView
        from hilnet.scenario.load import load_scenario

        view = LiveView(load_scenario(scenario), sys.stderr, sys.stderr.isatty())
        progress = view.update

    def interrupted(signum, frame):  # SIGTERM tears down like Ctrl-C: nothing left behind
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    result = write_reports_of(run(scenario, options, progress=progress), options.junit)
    if view is not None:
        view.close()
    if json_out:
        try:
            with open(f"{result.run_dir}/summary.json") as f:
                sys.stdout.write(f.read())
        except OSError:
            json.dump({"exit": result.exit_code, "reason": result.reason}, sys.stdout)
    elif result.report is not None:
        from hilnet.report.console import print_summary

        print_summary(result.report, result.run_dir, sys.stdout)
    if result.exit_code == 2:
        click.echo(f"hilnet: error: {result.reason}", err=True)
    raise SystemExit(result.exit_code)


def write_reports_of(result: RunResult, junit: str | None) -> RunResult:
    """Write the run folder's reports; a folder that cannot take them (a full disk) makes the run exit 2.

    The verdict is still printed then; only the folder is incomplete.
    """
    from hilnet.report import write_reports

    if result.report is None:
        return result
    meta = {
        "backend": result.backend,
        "backend_reason": result.backend_reason,
        "seed": result.scenario.seed,
        "junit": junit,
    }
    try:
        write_reports(result.run_dir, result.scenario, result.plan, result.events, result.report, meta)
    except OSError as e:
        detail = (result.detail + "; " if result.detail else "") + f"cannot write the reports: {e}"
        return dataclasses.replace(result, exit_code=2, detail=detail)
    return result
