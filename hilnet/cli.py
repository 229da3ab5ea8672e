"""The ``hilnet`` command: a click group whose subcommands load on first use.

Subcommands live in ``hilnet.commands.<name>`` and are imported only when run,
so ``hilnet --help`` and ``hilnet agent`` on a board never pay for scapy or
matplotlib. A :class:`~hilnet.errors.HilnetError` becomes one line on stderr
and exit status 2; any other exception is a bug, reported in one line too
unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from hilnet import __version__
from hilnet.errors import HilnetError

# name -> (module, help line); the help line is here so --help imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("hilnet.commands.validate", "Check scenario and bench files; report every error as FILE:LINE:COL."),
    "plan": ("hilnet.commands.plan", "Show what a scenario run would do: actions, contacts, capacity."),
    "geometry": ("hilnet.commands.geometry", "Show the windows and light time that a scenario's positions give."),
    "contacts": ("hilnet.commands.contacts", "Export or import ION contact plans."),
    "link": ("hilnet.commands.link", "Run one emulated link standalone between two endpoints."),
    "bundle": ("hilnet.commands.bundle", "Make and inspect BPv7 bundles."),
    "agent": ("hilnet.commands.agent", "Run the store-and-forward bundle agent of one node."),
    "send": ("hilnet.commands.send", "Hand a file to a running local agent as a bundle."),
    "recv": ("hilnet.commands.recv", "Receive bundles for an endpoint from a running local agent."),
    "run": ("hilnet.commands.run", "Replay a scenario on a testbed and check delivery."),
    "report": ("hilnet.commands.report", "Rebuild a run's reports from its events.jsonl."),
    "bench": ("hilnet.commands.bench", "Install this hilnet on every board of a bench."),
    "pki": ("hilnet.commands.pki", "Make a lab CA and node certificates for TCPCLv4 over TLS."),
    "doctor": ("hilnet.commands.doctor", "Check the emulator host and each board of a bench, one line per check."),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _available(n))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hilnet")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """hilnet: hardware-in-the-loop link emulator for delay-tolerant networks.

    Boards (or local processes) play the ISS, relay satellites and ground
    stations; links between them follow a scripted schedule of outages, delay,
    rate and errors; `hilnet run` checks that every bundle arrives.
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        rv = cli.main(args=argv, prog_name="hilnet", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("hilnet: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code == 1 else e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except HilnetError as e:
        if debug:
            raise
        lines = str(e).splitlines() or [type(e).__name__]
        for line in lines:  # several errors (a whole file's): each on its own line, each prefixed
            click.echo(f"hilnet: error: {line}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("hilnet: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # a bug: say so in one line, traceback only on request
        if debug:
            raise
        click.echo(f"hilnet: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)", err=True)
        sys.exit(2)
    sys.exit(0)
