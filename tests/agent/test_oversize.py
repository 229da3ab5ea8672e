"""A bundle over the receiving agent's size limit is refused before any acknowledgement; the sender keeps it.

Two in-process agents over real TCPCLv4 on loopback, real SQLite stores. The
receiver's limit is its ``max_bundle_size``; it goes out as the Transfer MRU of
its SESS_INIT, so the sender never starts a transfer the receiver cannot take,
keeps the bundle and says why in a ``refused`` event. A peer that ignores the
MRU gets XFER_REFUSE before the final XFER_ACK (tests/agent/cla/test_tcpcl_session.py).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from agent_procs import free_port

from hilnet.agent import protocol as ev
from hilnet.agent.agent import Agent
from hilnet.agent.cla import build_cla
from hilnet.agent.config import AgentConfig
from hilnet.agent.protocol import HostPort, MtcpConfig, SerialConfig, TcpclConfig
from hilnet.clock import MonotonicClock

pytestmark = pytest.mark.timeout(60)
S = 1_000_000_000
LIMIT = 1 << 20  # the receiver's max bundle size in this test, bytes


async def until(cond, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.01)


def of(events: list, cls) -> list:
    return [e for e in events if isinstance(e, cls)]


def test_oversize_bundle_is_refused_before_ack_and_the_sender_keeps_it(tmp_path):
    async def main():
        port = free_port()
        ea: list = []
        eb: list = []
        a, b = Agent(ea.append), Agent(eb.append)
        listen = TcpclConfig(listen=HostPort("127.0.0.1", port))
        await b.configure(
            AgentConfig("b", "ipn:2.0", str(tmp_path / "b.sqlite"), clas=(listen,), max_bundle_size=LIMIT)
        )
        dial = TcpclConfig(peers={"ipn:2.0": HostPort("127.0.0.1", port)})
        await a.configure(
            AgentConfig("a", "ipn:1.0", str(tmp_path / "a.sqlite"), clas=(dial,), routes={"*": "ipn:2.0"})
        )
        try:
            await until(lambda: of(ea, ev.SessionUp), "session up")
            up = of(ea, ev.SessionUp)[0]
            assert up.detail["peer_transfer_mru"] == LIMIT  # the limit is advertised in SESS_INIT
            big = await a.submit("ipn:2.1", b"x" * (2 * LIMIT), 3600 * S)
            await until(lambda: of(ea, ev.Refused), "the sender says why it keeps the bundle")
            refused = of(ea, ev.Refused)[0]
            assert refused.bundle == big and refused.peer == "ipn:2.0" and "transfer MRU" in refused.reason
            small = await a.submit("ipn:2.1", b"y" * 1000, 3600 * S)  # the session still carries what fits
            await until(lambda: any(e.bundle == small for e in of(ea, ev.Acked)), "the small bundle acked")
            await asyncio.sleep(0.6)  # past a forwarder recheck: the big one is tried again, said once only
            assert a.store.contains(big) and not b.store.contains(big)
            assert [e.bundle for e in of(ea, ev.Acked)] == [small] and len(of(ea, ev.Refused)) == 1
            assert not of(eb, ev.Rejected)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    "config",
    [
        TcpclConfig(listen=HostPort("127.0.0.1", 0)),
        MtcpConfig(listen=HostPort("127.0.0.1", 0)),
        SerialConfig(port="/dev/null", baud=9600, peer="ipn:2.0"),
    ],
    ids=["tcpcl", "mtcp", "serial"],
)
def test_every_cla_takes_the_agents_limit(config):
    cla = build_cla(config, node_id="ipn:1.0", clock=MonotonicClock(), max_bundle=LIMIT)
    limit = getattr(cla, "session_config", None) or getattr(cla, "config", None)
    got = getattr(limit, "transfer_mru", None) or getattr(limit, "max_bundle", None) or cla.max_bundle
    assert got == LIMIT
