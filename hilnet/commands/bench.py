"""``hilnet bench install BENCH``: put this checkout's hilnet on every board of a bench."""

from __future__ import annotations

import sys

import click


@click.group("bench")
def command() -> None:
    """Work with a bench of boards (docs/bench.md)."""


@command.command("install")
@click.argument("bench", type=click.Path(dir_okay=False))
@click.option("--board", "only", multiple=True, help="Install on this board only (repeatable).")
@click.option("--find-links", help="Where the boards' pip finds wheels (a URL or a directory on the boards).")
@click.option("--index-url", help="The package index the boards' pip uses instead of their own.")
@click.option(
    "--wheelhouse",
    type=click.Path(file_okay=False, exists=True),
    help="A directory of wheels here (hilnet's dependencies for the boards' platform), copied to every "
    "board and installed from without an index: for boards with no network to one.",
)
def install_command(
    bench: str, only: tuple[str, ...], find_links: str | None, index_url: str | None, wheelhouse: str | None
) -> None:
    """Build a wheel of this checkout and install the agent on every board of BENCH.

    Each board gets a virtual environment at its `hilnet:` path (default
    ~/.hilnet/venv) with hilnet and its light dependencies (no plotting).
    A board that already has this hilnet (same version and sources) is
    skipped. One line per board; exit 0 when every board has it, 2 when one
    could not get it.
    """
    from hilnet.bench.load import load_bench
    from hilnet.errors import InputError
    from hilnet.testbed.install import PipSource, install

    b = load_bench(bench, check_host=False)
    names = [x.name for x in b.boards]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise InputError(f"--board {unknown[0]}: no such board in {bench}; expected one of: {', '.join(names)}")
    boards = [x for x in b.boards if not only or x.name in only]
    ok = install(b, PipSource(find_links, index_url, wheelhouse), click.echo, boards)
    sys.exit(0 if ok else 2)
