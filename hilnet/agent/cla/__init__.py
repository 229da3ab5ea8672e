"""Convergence layer adapters: TCPCLv4, the serial CL, MTCP (see base.py for the contract)."""

from __future__ import annotations

from hilnet.agent.cla.base import ConvergenceLayer
from hilnet.agent.cla.limits import Resources
from hilnet.agent.protocol import ClaConfig, HostPort, MtcpConfig, SerialConfig, TcpclConfig
from hilnet.clock import Clock
from hilnet.errors import AgentError


def _addr(hp: HostPort) -> tuple[str, int]:
    return hp.host, hp.port


def build_cla(config: ClaConfig, *, node_id: str, clock: Clock, resources: Resources | None = None) -> ConvergenceLayer:
    """The CLA one ``clas`` entry of a configure command describes (docs/control.md), not yet started.

    ``resources``: the agent's limits, shared by all its CLAs (None: the CLA gets its own).
    """
    # Imported here: each CLA pulls its own imports, and an agent runs only the ones it is given.
    if isinstance(config, (TcpclConfig, MtcpConfig)):
        listen = None if config.listen is None else _addr(config.listen)
        peers = {eid: _addr(hp) for eid, hp in config.peers.items()}
        if isinstance(config, TcpclConfig):
            from hilnet.agent.cla.tcpcl import TcpclCla

            return TcpclCla(node_id, listen, peers, clock=clock, name="tcpcl", resources=resources)
        from hilnet.agent.cla.mtcp import MtcpCla

        return MtcpCla(node_id, listen, peers, clock=clock, name="mtcp", resources=resources)
    if isinstance(config, SerialConfig):
        from hilnet.agent.cla.serial import SerialCla

        return SerialCla(
            node_id,
            config.port,
            config.baud,
            config.peer,
            clock=clock,
            name=f"serial:{config.port.rsplit('/', 1)[-1]}",
            delay_hint_ns=config.delay_hint_ns,
            bits_per_byte=config.bits_per_byte,
            rtscts=config.rtscts,
            budget=None if resources is None else resources.budget,
        )
    raise AgentError(f"unknown convergence layer config {config!r}; expected tcpcl, serial or mtcp")
