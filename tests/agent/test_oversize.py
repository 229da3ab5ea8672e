"""A bundle over the receiving agent's size limit is refused before any acknowledgement; the sender keeps it.

Two in-process agents over real TCPCLv4 on loopback, real SQLite stores. The
receiver's limit is its ``max_bundle_size``; it goes out as the Transfer MRU of
its SESS_INIT, so the sender never starts a transfer the receiver cannot take,
keeps the bundle and says why in a ``refused`` event. A peer that ignores the
MRU gets XFER_REFUSE before the final XFER_ACK (tests/agent/cla/test_tcpcl_session.py).
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from agent_procs import Procs, free_port

from hilnet.agent import protocol as ev
from hilnet.agent.agent import Agent
from hilnet.agent.cla import build_cla
from hilnet.agent.cla import tcpcl_messages as m
from hilnet.agent.cla import tcpcl_wire as w
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


def test_a_real_agent_refuses_a_declared_oversize_transfer_before_any_ack(tmp_path):
    """A peer that ignores the Transfer MRU and declares 100 MiB gets XFER_REFUSE at once, not an XFER_ACK."""
    procs = Procs(tmp_path)
    port = free_port()
    try:
        procs.start("b")
        procs.configure("b", "ipn:2.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{port}"}])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            peer = RawPeer(s)
            s.sendall(w.encode_contact_header() + w.encode_sess_init(m.SessInit(0, 1 << 20, 1 << 30, "ipn:9.0")))
            got = peer.messages(1)
            assert isinstance(got[0], m.SessInit) and got[0].transfer_mru == 64 << 20  # the agent's limit
            declared = w.encode_transfer_length(100 << 20)
            s.sendall(w.encode_segment_header(m.SegmentFlag.START, 1, 1000, declared) + b"x" * 1000)
            (answer,) = peer.messages(1)
            assert answer == m.XferRefuse(m.RefuseReason.NO_RESOURCES, 1)
        assert procs.status("b")["stored"] == 0
    finally:
        procs.stop_all()


class RawPeer:
    """A TCPCLv4 peer written by hand: what a careless or hostile implementation may send."""

    def __init__(self, s: socket.socket):
        self.s = s
        self.buf = bytearray()
        self.header_seen = False

    def messages(self, n: int) -> list:
        """The next ``n`` messages (the contact header skipped, keepalives left out)."""
        out: list = []
        while len(out) < n:
            chunk = self.s.recv(65536)
            assert chunk, f"connection closed after {out}"
            self.buf += chunk
            if not self.header_seen and len(self.buf) >= 6:
                assert w.parse_contact_header(self.buf[:6]) is not None
                del self.buf[:6]
                self.header_seen = True
            while self.header_seen and (parsed := w.parse_message(bytes(self.buf))) is not None:
                msg, used = parsed
                del self.buf[:used]
                if not isinstance(msg, m.Keepalive):
                    out.append(msg)
        return out
