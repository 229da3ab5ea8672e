"""``hilnet contacts export|import``: ION contact plans to and from scenarios."""

from __future__ import annotations

from typing import IO

import click

from hilnet.errors import ContactPlanError
from hilnet.scenario.ion import export_ion
from hilnet.scenario.ion_import import import_ion
from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan

MAX_IONRC_BYTES = 4 * 2**20


@click.group("contacts")
def command() -> None:
    """Export a scenario's contact plan for ION, or import ION's as scenario links."""


@command.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.File("w"), default="-", help="Write here instead of stdout.")
def export(file: str, output: IO[str]) -> None:
    """Write FILE's contact plan as ION 'a contact' / 'a range' lines (wall time)."""
    scenario = load_scenario(file)
    output.write(export_ion(scenario, compile_plan(scenario)))


@command.command("import")
@click.argument("ionrc", type=click.File("rb"))
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiply ION's (wall) times by this to get scenario times; also the scenario's clock.scale.",
)
@click.option(
    "--epoch",
    metavar="UTC",
    help="The UTC time (ISO 8601, 2024-03-01T12:00:00Z) that is scenario time 0 and ION's start; "
    "default: the earliest absolute time in the file.",
)
def import_(ionrc: IO[bytes], scale: float, epoch: str | None) -> None:
    """Turn IONRC's contacts and ranges into a scenario (YAML on stdout); notes on what was skipped go to stderr."""
    data = ionrc.read(MAX_IONRC_BYTES + 1)
    name = getattr(ionrc, "name", "<ionrc>")
    if len(data) > MAX_IONRC_BYTES:
        raise ContactPlanError(f"{name}: over {MAX_IONRC_BYTES // 2**20} MiB; expected an ionrc contact plan")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContactPlanError(f"{name}: byte {e.start} is not UTF-8 text; expected an ionrc file") from None
    imported = import_ion(text, scale=scale, source=name, epoch=epoch)
    for note in imported.notes:
        click.echo(f"hilnet: note: {note}", err=True)
    click.echo(imported.text, nl=False)
