"""An injected bundle carries the hop limit its inject asked for (the plan's, from hilnet run)."""

from __future__ import annotations

import asyncio
import time

from agent_test_fakes import Node

from hilnet.agent.config import AgentConfig
from hilnet.bundle.blocks import hop_count
from hilnet.bundle.codec import decode_bundle
from hilnet.clock import VirtualClock


def test_the_agent_makes_the_bundle_with_the_limit_it_was_given(tmp_path):
    async def go():
        n = Node(VirtualClock(10**12), time.time_ns() - 10**12)
        await n.configure(AgentConfig(node="a", eid="ipn:1.0", store_path=str(tmp_path / "a.sqlite")))
        try:
            given = await n.agent.inject("ipn:2.0", 10, 1, 10**12, hop_limit=123)
            default = await n.agent.inject("ipn:2.0", 10, 2, 10**12)
            limits = [hop_count(decode_bundle(n.agent.store.get(k))).limit for k in (given, default)]
        finally:
            await n.agent.stop()
        return limits

    assert asyncio.run(go()) == [123, 32]
