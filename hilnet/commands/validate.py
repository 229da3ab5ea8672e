"""``hilnet validate FILE... [--bench BENCH]``: check scenario and bench files, every error as FILE:LINE:COL."""

from __future__ import annotations

import sys

import click

from hilnet.bench.load import is_bench_text, load_bench, load_bench_text
from hilnet.errors import ScenarioErrors, StackError
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import Scenario
from hilnet.scenario.yamltree import read_file
from hilnet.stacks.registry import require


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=False))
@click.option(
    "--bench",
    type=click.Path(dir_okay=False),
    help="Also check each scenario against this bench file (nodes, links, wiring, power).",
)
def command(files: tuple[str, ...], bench: str | None) -> None:
    """Check scenario and bench FILES; print one ok line per valid file.

    A file with a top-level `hilnet-bench:` key is read as a bench file,
    any other as a scenario. Every error of every file is printed as
    FILE:LINE:COL: message on stderr (a file that cannot be read at all as
    FILE: why); the exit status is 2 when any file has an error.
    """
    failed = False
    for path in files:
        try:
            click.echo(_check(path, bench))
        except ScenarioErrors as e:
            failed = True
            click.echo(str(e), err=True)
    if failed:
        # sys.exit, not click's Exit: cli.main runs click with standalone_mode=False,
        # where click returns Exit's code instead of exiting with it.
        sys.exit(2)


def _check(path: str, bench_path: str | None) -> str:
    """The ok line of one file; raises ScenarioErrors with every problem."""
    text, filename = read_file(path)
    if is_bench_text(text):
        b = load_bench_text(text, filename)
        return (
            f"{path}: ok (bench {b.name}: {_count(len(b.boards), 'board')}, "
            f"{_count(len(b.nodes), 'node')} on boards, {_count(len(b.wiring), 'link end')} wired)"
        )
    s = load_scenario_text(text, filename)
    line = (
        f"{path}: ok ({s.name}: {_count(len(s.nodes), 'node')}, {_count(len(s.links), 'link')}, "
        f"{_count(s.bundles_total(), 'bundle')}, {_count(len(s.faults), 'fault')})"
    )
    line += _stacks(s)
    if bench_path is None:
        return line
    b = load_bench(bench_path, s)
    real = [n for n, _ in b.nodes]
    virtual = [n.name for n in s.nodes if n.name not in real]
    return f"{line}; with bench {b.name}: on boards {', '.join(real) or '(none)'}, virtual {', '.join(virtual) or '(none)'}"


def _stacks(s: Scenario) -> str:
    """``; stacks: ion on iss, eac; hilnet on ...`` when a node runs another stack than hilnet's agent.

    A stack whose software is missing here is only noted (on stderr): the file
    is valid, and another machine may run it; ``hilnet run`` refuses it here.
    """
    by_stack: dict[str, list[str]] = {}
    for n in s.nodes:
        by_stack.setdefault(n.stack, []).append(n.name)
    if set(by_stack) <= {"hilnet"}:
        return ""
    for stack in by_stack:
        try:
            require(stack)
        except StackError as e:
            click.echo(f"{s.source}: note: {e}; hilnet run refuses it on this machine", err=True)
    return "; stacks: " + "; ".join(f"{stack} on {', '.join(names)}" for stack, names in by_stack.items())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
