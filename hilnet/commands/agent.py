"""``hilnet agent``: run one node's bundle agent."""

from __future__ import annotations

import asyncio
import logging
import os

import click

from hilnet.errors import InputError


@click.command(name="agent")
@click.option(
    "--stdio",
    is_flag=True,
    help="Take JSON-line commands on stdin and write events to stdout (how the controller runs it).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Node configuration YAML (the fields of the configure command); for a systemd unit.",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False),
    help="Unix socket for `hilnet send`/`hilnet recv` [default with --config: $XDG_RUNTIME_DIR/hilnet/NODE.sock].",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Store file when the configuration names none [default: NODE.store beside the --config file; with --stdio: ./hilnet-agent.store].",
)
@click.option(
    "--host",
    "host",
    is_flag=True,
    help="Run many nodes' agents in this one process, each line on stdin/stdout tagged with a node name "
    "(how the controller runs many virtual nodes; docs/control.md).",
)
@click.option(
    "--listen-fd",
    "listen_fds",
    multiple=True,
    metavar="FD=HOST:PORT",
    help="With --host: a descriptor this process inherits, bound to HOST:PORT; the agent that listens there uses it.",
)
@click.option("-v", "--verbose", count=True, help="More log lines on stderr.")
def command(
    stdio: bool,
    config_file: str | None,
    socket_path: str | None,
    store_path: str | None,
    host: bool,
    listen_fds: tuple[str, ...],
    verbose: int,
) -> None:
    """Run the store-and-forward bundle agent of one node.

    With --stdio the agent waits for a `configure` command (docs/control.md);
    with --config it configures itself from a YAML file and runs until SIGTERM;
    with --host it runs the agents of many nodes, started and driven by name.
    """
    from hilnet.agent import log_rate
    from hilnet.agent.local_socket import default_socket_path
    from hilnet.agent.server import run_agent

    fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging.basicConfig(
        level=logging.WARNING - 10 * verbose, format=fmt.replace("%(name)s", "%(node)s %(name)s") if host else fmt
    )
    log_rate.install()  # a flood of identical errors (a hostile peer) costs a few lines a window
    if host:
        from hilnet.agent.host import NodeLogFilter, host_main

        if stdio or config_file or socket_path:
            raise click.UsageError(
                "--host takes its nodes' commands on stdin: leave out --stdio, --config and --socket"
            )
        for handler in logging.getLogger().handlers:
            handler.addFilter(NodeLogFilter())
        raise SystemExit(host_main(listen_fds))
    if listen_fds:
        raise click.UsageError("--listen-fd goes with --host")
    if not stdio and not config_file:
        raise click.UsageError("give --stdio (controlled) or --config FILE (standalone)")
    config = None
    if config_file:
        config = load_agent_config(config_file, store_path)
        socket_path = socket_path or default_socket_path(config.node)
    code = asyncio.run(
        run_agent(stdio=stdio, config=config, socket_path=socket_path, default_store=store_path or "hilnet-agent.store")
    )
    raise SystemExit(code)


def load_agent_config(path: str, store_path: str | None):
    """Read a node YAML file through the same checks as a ``configure`` command."""
    import dataclasses
    import json

    import yaml

    from hilnet.agent import protocol
    from hilnet.agent.config import config_from_command
    from hilnet.errors import ControlError

    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise InputError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}:1:1: expected a mapping of configure fields (node, eid, store, clas...)")
    try:
        cmd = protocol.parse_command(json.dumps({"cmd": "configure", **raw}))
    except ControlError as e:
        raise InputError(f"{_where(path, str(e))}: {e}") from None
    if not isinstance(cmd, protocol.Configure):  # a `cmd:` key in the file named another command
        raise InputError(f"{path}: holds the fields of a configure command, not a {cmd.cmd!r} command")
    here = os.path.dirname(os.path.abspath(path))
    default_store = store_path or os.path.join(here, f"{raw.get('node')}.store")
    config = config_from_command(cmd, default_store)
    if config.keys_path is not None:  # a node file names its key file relative to itself
        config = dataclasses.replace(config, keys_path=os.path.join(here, os.path.expanduser(config.keys_path)))
    return config


def _where(path: str, message: str) -> str:
    """``FILE:LINE:COL`` of the field a configure error names (``field 'clas[0].listen'``), else FILE."""
    import re

    import yaml

    m = re.search(r"field '([^']+)'", message)
    if not m:
        return path
    try:
        with open(path, encoding="utf-8") as f:
            node = yaml.compose(f)
    except (OSError, yaml.YAMLError):
        return path
    mark = node.start_mark if node is not None else None
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", m.group(1)):
        if isinstance(node, yaml.MappingNode) and not part.startswith("["):
            hit = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if hit is None:
                break
            mark = hit[0].start_mark  # an unknown key is named where it is; a bad value below
            node = hit[1]
            if "unknown field" not in message and not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
                mark = node.start_mark
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            i = int(part[1:-1])
            if i >= len(node.value):
                break
            node = node.value[i]
            mark = node.start_mark
        else:
            break
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
