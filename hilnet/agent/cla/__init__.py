"""Convergence layer adapters: TCPCLv4, the serial CL, MTCP (see base.py for the contract)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hilnet.clock import Clock
from hilnet.errors import AgentError


def _addr(value: Any) -> tuple[str, int] | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return str(value[0]), int(value[1])
    host, _, port = str(value).rpartition(":")
    return host.strip("[]"), int(port)


def build_cla(spec: Mapping[str, Any], *, node_id: str, clock: Clock):
    """A CLA from one ``clas`` entry of a configure command (docs/control.md)."""
    kind = spec.get("type")
    peers = {eid: _addr(a) for eid, a in (spec.get("peers") or {}).items()}
    if kind == "tcpcl":
        from hilnet.agent.cla.tcpcl import TcpclCla

        return TcpclCla(node_id, _addr(spec.get("listen")), peers, clock=clock, name=spec.get("name", "tcpcl"))
    if kind == "mtcp":
        from hilnet.agent.cla.mtcp import MtcpCla

        return MtcpCla(node_id, _addr(spec.get("listen")), peers, clock=clock, name=spec.get("name", "mtcp"))
    if kind == "serial":
        from hilnet.agent.cla.serial import SerialCla

        return SerialCla(
            node_id,
            spec["port"],
            int(spec["baud"]),
            spec.get("peer"),
            clock=clock,
            name=spec.get("name", f"serial:{spec['port'].rsplit('/', 1)[-1]}"),
            delay_hint_ns=spec.get("delay_hint_ns"),
            bits_per_byte=int(spec.get("bits_per_byte") or 10),
        )
    raise AgentError(f"unknown convergence layer type {kind!r}; expected tcpcl, serial or mtcp")
