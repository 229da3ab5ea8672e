"""MTCP has no acknowledgement: a bundle it sent is reported ``sent``, never ``acked``.

Two in-process agents joined by real MTCP on loopback, real SQLite stores.
"""

from __future__ import annotations

import asyncio

import pytest
from agent_procs import free_port
from test_oversize import of, until

from hilnet.agent import protocol as ev
from hilnet.agent.agent import Agent
from hilnet.agent.config import AgentConfig
from hilnet.agent.protocol import HostPort, MtcpConfig

pytestmark = pytest.mark.timeout(60)
S = 1_000_000_000


def test_a_bundle_sent_over_mtcp_is_sent_not_acked(tmp_path):
    async def main():
        port = free_port()
        ea: list = []
        eb: list = []
        a, b = Agent(ea.append), Agent(eb.append)
        await b.configure(
            AgentConfig("b", "ipn:2.0", str(tmp_path / "b.sqlite"), clas=(MtcpConfig(HostPort("127.0.0.1", port)),))
        )
        dial = MtcpConfig(peers={"ipn:2.0": HostPort("127.0.0.1", port)})
        await a.configure(
            AgentConfig("a", "ipn:1.0", str(tmp_path / "a.sqlite"), clas=(dial,), routes={"*": "ipn:2.0"})
        )
        try:
            await until(lambda: of(ea, ev.SessionUp), "MTCP connection up")
            key = await a.submit("ipn:2.0", b"over mtcp", 3600 * S)
            await until(lambda: of(ea, ev.Sent), "the sent event")
            (sent,) = of(ea, ev.Sent)
            assert (sent.bundle, sent.to, sent.cla) == (key, "ipn:2.0", "mtcp")
            assert not of(ea, ev.Acked)
            assert [(d.key, d.reason) for _, d in a.store.deletions()] == [(key, "sent to ipn:2.0, unacknowledged")]
            await until(lambda: of(eb, ev.Delivered), "delivery at b")
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())
