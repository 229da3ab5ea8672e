"""What every backend builds: where each node's agent runs and how each link is wired.

A backend turns a scenario into runtime facts (namespaces, ports, pty paths,
boards over SSH) and takes them down again. The controller then starts one
agent per node with ``NodeRuntime.command`` (the whole argv: a local
process, one under ``ip netns exec``, or ``ssh board hilnet agent --stdio``)
and the CLA settings given here, and one emulated link per scenario link
between ``LinkRuntime.a_spec`` and ``b_spec`` (endpoint specs,
:mod:`hilnet.link.endpoints`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hilnet.agent.protocol import ClaConfig, SerialConfig
from hilnet.errors import TestbedError
from hilnet.scenario.model import ConvergenceLayer, Scenario


def local_agent_command(prefix: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``hilnet agent --stdio`` with this Python, behind ``prefix`` (e.g. ``ip netns exec NS``)."""
    return (*prefix, sys.executable, "-m", "hilnet", "agent", "--stdio")


@dataclass(frozen=True)
class Neighbour:
    """A node's neighbour over an Ethernet link, and the address it has as seen from here.

    For stacks that dial every neighbour themselves (ION's outducts), whichever end
    of the link hilnet's agent would dial from; the port is the stack's own.
    """

    name: str
    eid: str
    link: str
    host: str


@dataclass(frozen=True)
class NodeRuntime:
    name: str
    eid: str
    command: tuple[str, ...]  # the whole agent argv, run as a local subprocess
    clas: tuple[ClaConfig, ...]  # CLA settings of the configure command (docs/control.md)
    store_path: str  # as the agent must open it: absolute here, or a path on the board
    # argv that kill -9s the agent with this pid where it runs (a board); None: signal the local process
    kill_command: Callable[[int], list[str]] | None = None
    where: str = ""  # "board pi-iss (ssh pi@iss-pi)" for a real node; empty for a virtual one
    keys_path: str | None = None  # BPSec key file as the agent opens it (testbed/runkeys.py); None: no keys
    netns: str | None = None  # the node's network namespace (netns backend); None: the host's
    neighbours: tuple[Neighbour, ...] = ()  # Ethernet neighbours with their addresses (netns backend)


@dataclass(frozen=True)
class LinkRuntime:
    name: str
    a_spec: str  # endpoint spec of the link's end at node ``a``
    b_spec: str
    notes: tuple[str, ...] = field(default=())


class Testbed(Protocol):
    """A built testbed. ``build`` may raise TestbedError; ``teardown`` never raises."""

    name: str
    nodes: dict[str, NodeRuntime]
    links: dict[str, LinkRuntime]

    def build(self) -> None: ...

    def teardown(self) -> list[str]:
        """Remove everything built; returns what could not be removed (empty when clean)."""
        ...


def refuse_unwired_cls(scenario: Scenario, backend: str, wired: frozenset[ConvergenceLayer]) -> None:
    """A TestbedError naming each link whose ``cl`` this backend cannot wire, before anything is built."""
    # A link with no hilnet agent at either end needs no wiring here: the stacks at its
    # ends (ION) configure their own convergence layer over the link's Ethernet.
    agents = {n.name for n in scenario.nodes if n.stack == "hilnet"}
    bad = [
        f"link {ln.name!r}: cl {ln.convergence_layer}"
        for ln in scenario.links
        if ln.convergence_layer not in wired and {ln.a, ln.b} & agents
    ]
    if bad:
        raise TestbedError(f"the {backend} backend cannot wire {'; '.join(bad)}; it wires {', '.join(sorted(wired))}")


def serial_links(scenario: Scenario):
    return [ln for ln in scenario.links if ln.medium == "serial"]


def pty_specs(link, pty_dir: str) -> tuple[str, str, str, str]:
    """(a_spec, b_spec, a_path, b_path) of a serial link made of two ptys through the emulator."""
    a_path = f"{pty_dir}/{link.name}.{link.a}"
    b_path = f"{pty_dir}/{link.name}.{link.b}"
    return f"pty://{a_path}", f"pty://{b_path}", a_path, b_path


def serial_cla(port: str, params, peer_eid: str, rtscts: bool = False) -> SerialConfig:
    """The serial CLA settings for the end that sends with ``params`` (DirectionParams)."""
    # 8N2 and friends: the CLA paces as the line does
    return SerialConfig(port, params.baud, peer_eid, params.delay_ns, params.bits_per_byte or 10, rtscts)
