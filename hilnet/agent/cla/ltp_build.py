"""An LTP convergence layer from its ``clas`` entry and the agent's configuration.

Engine ids are the nodes' ``ipn:`` node numbers, as ION numbers its engines,
unless the entry names them (``engine_id``, ``engines``: needed for ``dtn:``
nodes). Each peer's :class:`~hilnet.agent.cla.ltp_plan.PeerPlan` comes from
the agent's contact plan, found by the peer's scenario node name.
"""

from __future__ import annotations

from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.ltp import LtpCla
from hilnet.agent.cla.ltp_plan import PeerPlan, peer_plan
from hilnet.agent.cla.ltp_session import LtpSettings, Peer
from hilnet.agent.config import AgentConfig
from hilnet.agent.nodes import node_id as node_id_of
from hilnet.agent.protocol import LtpConfig
from hilnet.bundle.eid import EidScheme, parse_eid
from hilnet.clock import Clock
from hilnet.errors import AgentError


def engine_of(eid: str, named: int | None, what: str) -> int:
    """``named`` if given, else the ipn node number of ``eid``; AgentError for a dtn: node without one."""
    if named is not None:
        return named
    parsed = parse_eid(eid)
    if parsed.scheme != EidScheme.IPN or not isinstance(parsed.ssp, tuple) or parsed.ssp[0] < 1:
        raise AgentError(f"LTP needs an engine id for {what} {eid}: give it in the ltp entry (ipn nodes have theirs)")
    return int(parsed.ssp[0])


def settings_of(config: LtpConfig, engine_id: int, max_bundle: int) -> LtpSettings:
    t = config.tunable
    return LtpSettings(
        engine_id,
        segment_size=t("segment_bytes"),
        max_block=min(t("max_block_bytes"), max_bundle),
        max_export=t("max_export"),
        max_import=t("max_import"),
        rto_margin_ns=t("rto_margin_ns"),
        max_retries=t("max_retries"),
        idle_ns=t("idle_ns"),
        rate=t("rate_bytes_per_s"),
        rtt_ns=t("rtt_ns"),
    )


def _plan(agent: AgentConfig | None, peer: str) -> PeerPlan:
    if agent is None:
        return PeerPlan()
    names = [name for name, eid in agent.nodes.items() if node_id_of(eid) == node_id_of(peer)]
    if not names:
        return PeerPlan()
    return peer_plan(agent.contacts, agent.node, names[0], agent.epoch_ns or 0)


def build_ltp(
    config: LtpConfig,
    node_id: str,
    clock: Clock,
    max_bundle: int,
    resources: Resources | None,
    agent: AgentConfig | None,
) -> LtpCla:
    me = engine_of(node_id, config.engine_id, "this node")
    peers = {}
    for eid, hp in config.peers.items():
        nid = node_id_of(eid)
        engine = engine_of(eid, config.engines.get(eid), "peer")
        if engine == me:
            raise AgentError(f"LTP peer {eid} has this node's own engine id {me}")
        peers[nid] = Peer(engine, nid, (hp.host, hp.port), _plan(agent, nid))
    return LtpCla(
        node_id,
        settings_of(config, me, max_bundle),
        (config.listen.host, config.listen.port),
        peers,
        clock=clock,
        name="ltp",
        resources=resources,
        replan=_plan,
    )
