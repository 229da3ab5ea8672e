"""Every option of every command is documented, and every option the docs use exists.

Walks the click group (``hilnet``, its commands and subcommands) and compares
each command's options with the table the docs mark ``<!-- options: hilnet CMD -->``:
the same options, no more, no less. Then reads every ``hilnet CMD ...`` command
line in the docs (code blocks and inline code) and checks that each option it
uses belongs to that command.
"""

from __future__ import annotations

import re
import shlex

import click
import pytest
from docs_markdown import blocks, doc_files, marked_tables, rel

from hilnet.cli import cli

# Commands another branch of work adds (the bench: `hilnet doctor`, `hilnet bench
# install`). The docs may name them before they exist here; once they exist they
# are checked like every other command, so this set only ever excuses absence.
PENDING = {"hilnet doctor", "hilnet bench"}
HELP = {"-h", "--help"}


def _commands() -> dict[str, click.Command]:
    """``"hilnet run"`` -> its click command, for the group and everything under it."""
    found: dict[str, click.Command] = {}

    def walk(path: str, cmd: click.Command) -> None:
        found[path] = cmd
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd, info_name=path.split()[-1])
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(f"{path} {name}", sub)

    walk("hilnet", cli)
    return found


def _options(cmd: click.Command) -> set[str]:
    opts: set[str] = set()
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            opts.update(p.opts)
            opts.update(p.secondary_opts)  # --full-duration of --until-settled/--full-duration
    return opts - HELP


COMMANDS = _commands()
_OPT = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _table_options(names: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, line in names.items():
        for opt in _OPT.findall(name):
            out.setdefault(opt, line)
    return out


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=str)
def test_every_option_is_in_the_commands_table(path: str) -> None:
    opts = _options(COMMANDS[path])
    tables = [t for t in marked_tables("options") if t.value == path]
    if not opts:
        assert not tables, f"{tables[0].where}: `{path}` has no options; remove the table marked for it"
        return
    assert tables, (
        f"`{path}` has options {sorted(opts)} but no docs page has a table marked "
        f"`<!-- options: {path} -->`: add one (a row per option, the option in backticks in the first column) "
        f"to the page that documents `{path}`"
    )
    assert len(tables) == 1, f"`{path}` has two options tables: {tables[0].where} and {tables[1].where}; keep one"
    table = tables[0]
    listed = _table_options(table.names)
    missing = sorted(opts - set(listed))
    extra = sorted(set(listed) - opts - HELP)
    assert not missing, (
        f"{table.where}: `{path}` has option(s) {missing} that its options table does not list: "
        f"add a row for each (`--option VALUE` | what it does)"
    )
    assert not extra, (
        f"{rel(table.path)}:{listed[extra[0]]}: the options table of `{path}` lists {extra}, "
        f"which `{path} --help` does not have: remove the row or add the option"
    )


def _command_lines() -> list[tuple[str, str]]:
    """(where, text) of every command line in the docs that starts with ``hilnet``."""
    lines: list[tuple[str, str]] = []
    for path in doc_files():
        for b in blocks(path):
            if b.lang not in ("", "sh", "bash", "console", "shell"):
                continue
            text = b.text.replace("\\\n", " ")
            for n, line in enumerate(text.splitlines()):
                lines.append((f"{rel(path)}:{b.line + 1 + n}", line))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith(("    ", "```")):
                continue
            for span in re.findall(r"`([^`]+)`", line):
                lines.append((f"{rel(path)}:{n}", span))
    return lines


def _names_command(rest: list[str]) -> bool:
    word = next((w for w in rest if not w.startswith("-")), "")
    return f"hilnet {word}" in COMMANDS or f"hilnet {word}" in PENDING


def _uses() -> list[tuple[str, str, list[str]]]:
    """(where, command path, options used) for each ``hilnet ...`` in the docs."""
    uses = []
    for where, line in _command_lines():
        for segment in re.split(r"&&|\|\||[|;&]|\$\(|\)", line.split(" # ")[0]):
            try:
                words = shlex.split(segment, comments=False)
            except ValueError:
                words = segment.split()
            words = [w.strip("[]") for w in words]
            # `hilnet`, `.venv/bin/hilnet`, `/opt/hilnet/bin/hilnet`
            starts = [i for i, w in enumerate(words) if w == "hilnet" or w.endswith("/bin/hilnet")]
            if not starts:
                continue
            # `sudo -u hilnet /opt/hilnet/bin/hilnet send ...`: the hilnet followed by a command
            words = words[next((i for i in starts if _names_command(words[i + 1 :])), starts[0]) :]
            path = "hilnet"
            for w in words[1:]:
                if w.startswith("-"):  # a group's own flag (`hilnet --debug run`)
                    continue
                if f"{path} {w}" in COMMANDS or f"{path} {w}" in PENDING or path in PENDING:
                    path = f"{path} {w}"
                else:
                    break
            opts = [m for w in words[1:] if (m := re.fullmatch(r"(--?[A-Za-z][\w-]*)(=.*)?", w))]
            uses.append((where, path, [m.group(1) for m in opts]))
    return uses


def test_every_option_the_docs_use_exists() -> None:
    problems = []
    for where, path, used in _uses():
        pending = any(path == p or path.startswith(p + " ") for p in PENDING)
        if path not in COMMANDS:
            if not pending:
                problems.append(f"{where}: `{path}` is not a hilnet command")
            continue
        known = _options(COMMANDS[path]) | HELP
        # A group's own options come before its subcommand; `hilnet --debug run` is fine.
        parents = [" ".join(path.split()[:k]) for k in range(1, len(path.split()))]
        for p in parents:
            known |= _options(COMMANDS[p])
        for opt in used:
            if opt not in known:
                problems.append(f"{where}: `{path}` has no option {opt} (it has: {', '.join(sorted(known))})")
    assert not problems, "the docs use options that do not exist:\n" + "\n".join(problems)


def test_the_walk_sees_every_command() -> None:
    # A guard on the guard: if the group stopped listing commands, every check above would pass vacuously.
    assert {"hilnet run", "hilnet link", "hilnet agent", "hilnet bundle make", "hilnet contacts export"} <= set(
        COMMANDS
    )
