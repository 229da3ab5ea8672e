"""``hilnet recv``: receive bundles for an endpoint from a running local agent."""

from __future__ import annotations

import base64
import json
import os
import socket

import click

from hilnet.clock import Clock, MonotonicClock
from hilnet.commands.send import agent_socket, connect
from hilnet.errors import AgentError, NoAgentError


@click.command(name="recv")
@click.argument("endpoint")
@click.option("--node", help="Name of the local agent's node (finds its socket).")
@click.option("--socket", "socket_path", help="The agent's Unix socket.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Directory to write each payload into (one file per bundle).",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many bundles.")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Wait up to SECONDS for the agent's socket to appear (an agent still starting).",
)
def command(
    endpoint: str, node: str | None, socket_path: str | None, out_dir: str, count: int | None, wait_s: float
) -> None:
    """Receive bundles for ENDPOINT (ipn:4.1) and write each payload to a file.

    Bundles that arrived while nobody listened were held by the agent and
    come first. Runs until Ctrl-C or --count bundles.
    """
    os.makedirs(out_dir, exist_ok=True)
    s = connect_waiting(agent_socket(node, socket_path), wait_s)
    s.sendall(json.dumps({"cmd": "subscribe", "id": 1, "endpoint": endpoint}).encode() + b"\n")
    got = 0
    for raw in s.makefile("rb"):
        msg = json.loads(raw)
        kind = msg.get("event")
        if kind == "error":
            raise AgentError(f"the agent refused: {msg.get('reason')}")
        if kind == "reply":
            click.echo(f"listening on {endpoint}", err=True)
            continue
        if kind != "bundle":
            continue
        payload = base64.b64decode(msg["payload_b64"])
        name = msg["bundle"].replace("/", "_").replace(":", "_")
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(payload)
        click.echo(f"{msg['bundle']}: {len(payload)} bytes -> {path}")
        got += 1
        if count and got >= count:
            return
    raise AgentError("the agent closed the connection")


NS_PER_S = 1_000_000_000
RETRY_NS = NS_PER_S // 10  # how often --wait tries the socket again


def connect_waiting(path: str, wait_s: float, clock: Clock | None = None) -> socket.socket:
    """:func:`connect`, retried every 0.1 s for up to ``wait_s`` seconds while no agent listens at ``path``."""
    clock = clock or MonotonicClock()
    deadline = clock.now_ns() + int(wait_s * NS_PER_S)
    while True:
        try:
            return connect(path)
        except NoAgentError as e:
            if clock.now_ns() >= deadline:
                raise NoAgentError(f"{e}{f' (waited {wait_s:g} s)' if wait_s else ''}") from None
        clock.sleep_until_ns(min(deadline, clock.now_ns() + RETRY_NS))
