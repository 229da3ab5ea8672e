"""``hilnet plan FILE [--json]``: what a run of the scenario would do, without doing it."""

from __future__ import annotations

import json

import click

from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan


@click.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (ns, bytes, bytes/s).")
def command(file: str, as_json: bool) -> None:
    """Print FILE's timeline, contact plan, capacities and warnings."""
    plan = compile_plan(load_scenario(file))
    if as_json:
        click.echo(json.dumps(plan_to_json(plan), indent=2))
    else:
        click.echo(render_plan(plan))
