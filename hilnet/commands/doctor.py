"""``hilnet doctor [--bench BENCH]``: check the emulator host and every board, one line per check."""

from __future__ import annotations

import sys

import click


@click.command("doctor")
@click.option("--bench", type=click.Path(dir_okay=False), help="Also check this bench's ports and boards.")
def command(bench: str | None) -> None:
    """Check that this host (and each board of BENCH) is ready for a run.

    One line per check: `ok` with what was seen, or `FAIL` with what to do.
    Exit 0 when every check is ok, 1 when one failed, 2 for a bad bench file.
    """
    from hilnet.bench.load import load_bench
    from hilnet.testbed.doctor import board_checks, host_checks

    b = load_bench(bench, check_host=False) if bench else None  # a missing port is a check, not bad input
    failed = False
    for check in host_checks(b):
        failed |= not check.ok
        click.echo(check.line())
    if b is not None:
        for checks in board_checks(b).values():
            for check in checks:
                failed |= not check.ok
                click.echo(check.line())
    sys.exit(1 if failed else 0)
