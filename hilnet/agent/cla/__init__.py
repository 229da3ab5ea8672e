"""Convergence layer adapters: TCPCLv4, the serial CL, MTCP (see base.py for the contract)."""

from __future__ import annotations

from hilnet.agent.cla.base import ConvergenceLayer
from hilnet.agent.protocol import ClaConfig, HostPort, MtcpConfig, SerialConfig, TcpclConfig
from hilnet.clock import Clock
from hilnet.errors import AgentError

NS_PER_S = 1_000_000_000


def _addr(hp: HostPort) -> tuple[str, int]:
    return hp.host, hp.port


def build_cla(config: ClaConfig, *, node_id: str, clock: Clock) -> ConvergenceLayer:
    """The CLA one ``clas`` entry of a configure command describes (docs/control.md), not yet started."""
    # Imported here: each CLA pulls its own imports, and an agent runs only the ones it is given.
    if isinstance(config, (TcpclConfig, MtcpConfig)):
        listen = None if config.listen is None else _addr(config.listen)
        peers = {eid: _addr(hp) for eid, hp in config.peers.items()}
        low, high = config.reconnect_min_ns / NS_PER_S, config.reconnect_max_ns / NS_PER_S
        if isinstance(config, TcpclConfig):
            from hilnet.agent.cla.tcpcl import TcpclCla
            from hilnet.agent.cla.tcpcl_security import TlsPolicy
            from hilnet.agent.cla.tcpcl_tls import TlsFiles

            files = TlsFiles(config.cert, config.key, config.ca) if config.cert and config.key and config.ca else None
            return TcpclCla(
                node_id,
                listen,
                peers,
                clock=clock,
                name="tcpcl",
                keepalive_s=config.keepalive_s,
                segment_mru=config.segment_mru_bytes,
                reconnect_min_s=low,
                reconnect_max_s=high,
                tls=TlsPolicy(config.tls),
                tls_files=files,
            )
        from hilnet.agent.cla.mtcp import MtcpCla

        timeout_s = config.send_timeout_ns / NS_PER_S
        return MtcpCla(
            node_id,
            listen,
            peers,
            clock=clock,
            name="mtcp",
            send_timeout_s=timeout_s,
            reconnect_min_s=low,
            reconnect_max_s=high,
        )
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
        )
    raise AgentError(f"unknown convergence layer config {config!r}; expected tcpcl, serial or mtcp")
