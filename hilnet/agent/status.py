"""The ``status`` reply of an agent: what it stores, sends and holds open, and its counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hilnet.agent.agent import Agent
    from hilnet.agent.forwarder import Forwarder


def status_of(agent: Agent, forwarder: Forwarder, sessions: list[str]) -> dict[str, Any]:
    """``agent``'s status; ``forwarder`` is its running forwarder, ``sessions`` the peers with a session up."""
    return {
        "node": agent.node,
        "eid": agent.eid,
        "inflight": len(forwarder.inflight),
        "stored": agent.store.count(),
        "bytes": agent.store.bytes_used(),
        "sessions": sessions,
        "counters": dict(agent.counters) | {f"{c.name}:{k}": v for c in agent.clas for k, v in c.stats.items()},
        "limits": agent.resources.status(),
    }
