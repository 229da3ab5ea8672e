"""A bench against the scenario it is to run: every error at the bench file's (or scenario's) FILE:LINE:COL.

The bench must name only scenario nodes and links, wire each end of a node
on a board with the link's medium (a UART for serial, a NIC for Ethernet)
and leave no such end unwired; a ``power-cut`` fault needs its node on a
board with power commands.
"""

from __future__ import annotations

from yaml.nodes import Node

from hilnet.bench.model import Bench, UartEnd
from hilnet.errors import ScenarioError
from hilnet.scenario.model import PowerCut, Scenario
from hilnet.scenario.reader import Reader, did_you_mean

# ("top",) | ("node", NODE) | ("link", LINK) | ("end", LINK, NODE) -> the YAML node to point at
Positions = dict[tuple[str, ...], Node]


def check_pair(bench: Bench, scenario: Scenario, where: Positions, r: Reader) -> None:
    """Record in ``r`` every way ``bench`` does not fit ``scenario``."""
    node_names = [n.name for n in scenario.nodes]
    links = {ln.name: ln for ln in scenario.links}
    for node, _board in bench.nodes:
        if node not in node_names:
            r.error(
                where[("node", node)],
                f"node {node!r} is not a node of scenario {scenario.name}{did_you_mean(node, node_names)}; "
                f"expected one of: {', '.join(node_names)}",
            )
    for link_name, node, end in bench.wiring:
        at = where[("end", link_name, node)]
        link = links.get(link_name)
        if link is None:
            r.error(
                where[("link", link_name)],
                f"link {link_name!r} is not a link of scenario {scenario.name}"
                f"{did_you_mean(link_name, list(links))}; expected one of: {', '.join(links)}",
            )
            continue
        if node not in (link.a, link.b):
            r.error(at, f"link {link_name!r} joins {link.a} and {link.b}, not {node!r}; expected {link.a} or {link.b}")
            continue
        is_uart = isinstance(end, UartEnd)
        if link.medium == "serial" and not is_uart:
            r.error(
                at,
                f"link {link_name!r} is serial, but its end {node!r} is wired to a NIC; expected uart: and a serial emulator port",
            )
        elif link.medium == "ethernet" and is_uart:
            r.error(
                at,
                f"link {link_name!r} is ethernet, but its end {node!r} is wired to a UART; expected nic:, address: and an emulator interface",
            )
    _check_unwired(bench, scenario, where, r)
    _check_power(bench, scenario, r)


def _check_unwired(bench: Bench, scenario: Scenario, where: Positions, r: Reader) -> None:
    for link in scenario.links:
        for node in (link.a, link.b):
            board = bench.board_of(node)
            if board is None or bench.end(link.name, node) is not None:
                continue
            at = where.get(("end", link.name, node)) or where[("node", node)]
            if ("end", link.name, node) in where:
                continue  # wired, with an error already recorded
            what = (
                "uart: /dev/ttyAMA0, emulator: /dev/ttyUSB0"
                if link.medium == "serial"
                else "nic: eth1, address: 10.79.1.1/24, emulator: eth2"
            )
            r.error(
                at,
                f"node {node!r} is on board {board.name}, but its end of link {link.name!r} is not wired; "
                f"expected wiring: {{{link.name}: {{{node}: {{{what}}}}}}}",
            )


def _check_power(bench: Bench, scenario: Scenario, r: Reader) -> None:
    for f in scenario.faults:
        if not isinstance(f, PowerCut):
            continue
        board = bench.board_of(f.node)
        if board is not None and board.power is not None:
            continue
        why = (
            f"{f.node} runs virtually (not on a board of {bench.source})"
            if board is None
            else f"board {board.name} has no power commands"
        )
        r.errors.append(
            ScenarioError(
                f"power-cut: {f.node} needs a board with power commands, but {why}; "
                "expected power: {off: [...], on: [...]} on its board in the bench file",
                scenario.source,
                f.line,
                f.col,
            )
        )
