"""``hilnet geometry FILE [--json]``: the passes and ranges that positions give, for checking against a tracker."""

from __future__ import annotations

import json

import click

from hilnet.errors import InputError
from hilnet.scenario.epoch import format_utc
from hilnet.scenario.geometry.staleness import tle_age_warnings
from hilnet.scenario.geometry.view import HEADERS, geometry_json, pass_rows
from hilnet.scenario.load import load_scenario


@click.command("geometry")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the passes as JSON (ns, metres, degrees).")
def command(file: str, as_json: bool) -> None:
    """Print the windows and light-time ranges FILE's positions give each link."""
    scenario = load_scenario(file)
    geometry = tuple((link.name, link.geometry) for link in scenario.links if link.geometry is not None)
    if not geometry:
        raise InputError(
            f"{file}: no link has up: line-of-sight or delay: light-time; expected a scenario with positions "
            "(see docs/scenario.md, Positions and orbits)"
        )
    epoch = scenario.clock.epoch_unix_ns
    for warning in tle_age_warnings(scenario):
        click.echo(f"hilnet: warning: {warning}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {"scenario": scenario.name, "epoch": scenario.clock.epoch, "links": geometry_json(geometry, epoch)},
                indent=2,
            )
        )
        return
    rows = pass_rows(geometry, epoch)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    start = format_utc(epoch) if epoch is not None else "-"
    click.echo(f"geometry of {scenario.name}: scenario time 0 is {start}; {len(rows)} windows")
    for line in [HEADERS, ["-" * w for w in widths], *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
