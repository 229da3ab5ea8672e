"""``hilnet validate FILE...``: check scenario files, reporting every error as FILE:LINE:COL."""

from __future__ import annotations

import sys

import click

from hilnet.errors import ScenarioErrors
from hilnet.scenario.load import load_scenario


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=False))
def command(files: tuple[str, ...]) -> None:
    """Check scenario FILES; print one ok line per valid file.

    Every error in every file is printed as FILE:LINE:COL: message on stderr
    (a file that cannot be read at all as FILE: why); the exit status is 2
    when any file has an error.
    """
    failed = False
    for path in files:
        try:
            s = load_scenario(path)
        except ScenarioErrors as e:
            failed = True
            click.echo(str(e), err=True)
            continue
        click.echo(
            f"{path}: ok ({s.name}: {len(s.nodes)} nodes, {len(s.links)} links, "
            f"{s.bundles_total()} bundles, {len(s.faults)} faults)"
        )
    if failed:
        # sys.exit, not click's Exit: cli.main runs click with standalone_mode=False,
        # where click returns Exit's code instead of exiting with it.
        sys.exit(2)
