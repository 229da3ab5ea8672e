"""``hilnet send``: post a file as a bundle through a running local agent."""

from __future__ import annotations

import socket

import click

from hilnet.errors import AgentError, InputError


def agent_socket(node: str | None, path: str | None) -> str:
    from hilnet.agent.local_socket import default_socket_path

    if path:
        return path
    if not node:
        raise click.UsageError("give --node NAME (the agent's node) or --socket PATH")
    return default_socket_path(node)


def connect(path: str) -> socket.socket:
    """A connection to the agent at ``path``, once its directory, socket and process are this user's or root's."""
    from hilnet.agent.local_socket import connect_checked

    return connect_checked(path)


@click.command(name="send")
@click.argument("dest")
@click.argument("file", type=click.File("rb"))
@click.option("--node", help="Name of the local agent's node (finds its socket).")
@click.option("--socket", "socket_path", help="The agent's Unix socket.")
@click.option("--lifetime", default="1h", show_default=True, help="Bundle lifetime (e.g. 90m).")
@click.option("--priority", type=click.IntRange(0, 2), default=1, show_default=True)
def command(dest: str, file, node: str | None, socket_path: str | None, lifetime: str, priority: int) -> None:
    """Send FILE (or - for stdin) to endpoint DEST (ipn:4.1) as one bundle."""
    from hilnet.units import parse_duration

    try:
        lifetime_ns = parse_duration(lifetime)
    except InputError as e:
        raise click.BadParameter(str(e), param_hint="--lifetime") from None
    payload = file.read()
    from hilnet.agent.protocol import MAX_LINE, Error, Inject, Reply, encode_command, parse_event, read_lines_sync

    # The payload travels base64 in one control line (docs/control.md); leave room for the rest.
    limit = (MAX_LINE - 1024) // 4 * 3
    if len(payload) > limit:
        raise InputError(
            f"{file.name}: {len(payload)} bytes; `hilnet send` carries at most {limit} bytes "
            f"per bundle (one control line of {MAX_LINE} bytes, base64)"
        )
    s = connect(agent_socket(node, socket_path))
    s.sendall(encode_command(Inject(id=1, dest=dest, payload=payload, lifetime_ns=lifetime_ns, priority=priority)))
    for raw in read_lines_sync(s.makefile("rb")):
        event = parse_event(raw)
        if isinstance(event, Reply) and event.id == 1:
            click.echo(f"sent {len(payload)} bytes to {dest} as bundle {event.result['bundle']}")
            return
        if isinstance(event, Error):
            raise AgentError(f"the agent refused: {event.reason}")
    raise AgentError("the agent closed the connection without answering")
