"""``hilnet send``: post a file as a bundle through a running local agent."""

from __future__ import annotations

import base64
import json
import socket

import click

from hilnet.errors import AgentError, InputError


def agent_socket(node: str | None, path: str | None) -> str:
    from hilnet.agent.server import default_socket_path

    if path:
        return path
    if not node:
        raise click.UsageError("give --node NAME (the agent's node) or --socket PATH")
    return default_socket_path(node)


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        raise AgentError(f"no agent listening at {path} ({e.strerror}); is `hilnet agent --config` running?") from None
    return s


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
    from hilnet.agent.protocol import MAX_LINE

    # The payload travels base64 in one control line (docs/control.md); leave room for the rest.
    limit = (MAX_LINE - 1024) // 4 * 3
    if len(payload) > limit:
        raise InputError(
            f"{file.name}: {len(payload)} bytes; `hilnet send` carries at most {limit} bytes "
            f"per bundle (one control line of {MAX_LINE} bytes, base64)"
        )
    s = connect(agent_socket(node, socket_path))
    line = json.dumps(
        {
            "cmd": "inject",
            "id": 1,
            "dest": dest,
            "lifetime_ns": lifetime_ns,
            "priority": priority,
            "payload_b64": base64.b64encode(payload).decode(),
        }
    )
    s.sendall(line.encode() + b"\n")
    f = s.makefile("rb")
    for raw in f:
        msg = json.loads(raw)
        if msg.get("event") == "reply" and msg.get("id") == 1:
            click.echo(f"sent {len(payload)} bytes to {dest} as bundle {msg['result']['bundle']}")
            return
        if msg.get("event") == "error":
            raise AgentError(f"the agent refused: {msg.get('reason')}")
    raise AgentError("the agent closed the connection without answering")
