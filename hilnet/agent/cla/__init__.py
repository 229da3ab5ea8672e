"""Convergence layer adapters: TCPCLv4, TCPCLv3, the serial CL, MTCP, LTP (see base.py for the contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hilnet.agent.cla.base import ConvergenceLayer
from hilnet.agent.cla.limits import Resources
from hilnet.agent.protocol import ClaConfig, HostPort, LtpConfig, MtcpConfig, SerialConfig, TcpclConfig, TcpclV3Config
from hilnet.clock import Clock
from hilnet.errors import AgentError

if TYPE_CHECKING:
    from hilnet.agent.config import AgentConfig

NS_PER_S = 1_000_000_000


def _addr(hp: HostPort) -> tuple[str, int]:
    return hp.host, hp.port


def _tcp_common(config: TcpclConfig | TcpclV3Config | MtcpConfig) -> dict[str, Any]:
    """What TCPCL and MTCP take alike from their config: where to listen, whom to dial, the redial backoff."""
    return {
        "listen": None if config.listen is None else _addr(config.listen),
        "peers": {eid: _addr(hp) for eid, hp in config.peers.items()},
        "reconnect_min_s": config.reconnect_min_ns / NS_PER_S,
        "reconnect_max_s": config.reconnect_max_ns / NS_PER_S,
    }


def build_cla(
    config: ClaConfig,
    *,
    node_id: str,
    clock: Clock,
    max_bundle: int | None = None,
    resources: Resources | None = None,
    agent: AgentConfig | None = None,
) -> ConvergenceLayer:
    """The CLA one ``clas`` entry of a configure command describes (docs/control.md), not yet started.

    ``max_bundle`` (bytes) is the agent's limit (default: ``agent``'s): each CLA refuses a
    bigger bundle before acknowledging any of it, and says so to its peer where the protocol
    can (TCPCLv4's Transfer MRU in SESS_INIT), so the sender keeps its copy. ``resources``:
    the agent's limits, shared by all its CLAs (None: the CLA gets its own). ``agent``: the
    agent's configuration, whose contact plan LTP takes its timers and rates from.
    """
    if max_bundle is None:
        if agent is None:
            raise AgentError("build_cla needs max_bundle or the agent's configuration")
        max_bundle = agent.max_bundle_size
    if isinstance(config, LtpConfig):
        from hilnet.agent.cla.ltp_build import build_ltp

        return build_ltp(config, node_id, clock, max_bundle, resources, agent)
    if isinstance(config, TcpclConfig):
        return _tcpcl(config, node_id, clock, max_bundle, resources)
    if isinstance(config, TcpclV3Config):
        return _tcpclv3(config, node_id, clock, max_bundle, resources)
    if isinstance(config, MtcpConfig):
        return _mtcp(config, node_id, clock, max_bundle, resources)
    if isinstance(config, SerialConfig):
        return _serial(config, node_id, clock, max_bundle, resources)
    raise AgentError(f"unknown convergence layer config {config!r}; expected tcpcl, tcpclv3, serial, mtcp or ltp")


# Each builder imports its CLA: an agent pulls in only the CLAs it is given.


def _tcpcl(
    config: TcpclConfig, node_id: str, clock: Clock, max_bundle: int, resources: Resources | None
) -> ConvergenceLayer:
    from hilnet.agent.cla.tcpcl import TcpclCla
    from hilnet.agent.cla.tcpcl_security import TlsPolicy
    from hilnet.agent.cla.tcpcl_tls import TlsFiles

    files = TlsFiles(config.cert, config.key, config.ca) if config.cert and config.key and config.ca else None
    return TcpclCla(
        node_id,
        **_tcp_common(config),
        clock=clock,
        name="tcpcl",
        keepalive_s=config.keepalive_s,
        segment_mru=config.segment_mru_bytes,
        tls=TlsPolicy(config.tls),
        tls_files=files,
        transfer_mru=max_bundle,
        resources=resources,
    )


def _tcpclv3(
    config: TcpclV3Config, node_id: str, clock: Clock, max_bundle: int, resources: Resources | None
) -> ConvergenceLayer:
    from hilnet.agent.cla.tcpclv3 import TcpclV3Cla

    return TcpclV3Cla(
        node_id,
        **_tcp_common(config),
        clock=clock,
        name="tcpclv3",
        keepalive_s=config.keepalive_s,
        transfer_mru=max_bundle,
        resources=resources,
    )


def _mtcp(
    config: MtcpConfig, node_id: str, clock: Clock, max_bundle: int, resources: Resources | None
) -> ConvergenceLayer:
    from hilnet.agent.cla.mtcp import MtcpCla

    return MtcpCla(
        node_id,
        **_tcp_common(config),
        clock=clock,
        name="mtcp",
        send_timeout_s=config.send_timeout_ns / NS_PER_S,
        max_bundle=max_bundle,
        resources=resources,
    )


def _serial(
    config: SerialConfig, node_id: str, clock: Clock, max_bundle: int, resources: Resources | None
) -> ConvergenceLayer:
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
        max_bundle=max_bundle,
        budget=None if resources is None else resources.budget,
    )
