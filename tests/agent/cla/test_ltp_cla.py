"""The LTP convergence layer over real UDP: two CLAs directly, through `hilnet link`, and two agents in a run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hilnet.agent.cla import build_cla
from hilnet.agent.cla.ltp import LtpCla
from hilnet.agent.cla.ltp_session import LtpSettings, Peer
from hilnet.agent.cla_config import cla_json, read_cla
from hilnet.agent.jsonlines import FieldReader
from hilnet.agent.protocol import HostPort, LtpConfig
from hilnet.clock import MonotonicClock
from hilnet.errors import AgentError, ClaError, ControlError, StoreFullError
from hilnet.testbed.netns import netns_available

ROOT = Path(__file__).parents[3]


def udp_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Sink:
    def __init__(self, refuse: bool = False) -> None:
        self.got: list[bytes] = []
        self.sessions: list[tuple[str, bool]] = []
        self.refuse = refuse

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        if self.refuse:
            raise StoreFullError("store full")
        await asyncio.sleep(0.05)  # a commit takes a while: the final report must wait for it
        self.got.append(data)

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict[str, Any]) -> None:
        self.sessions.append((peer, up))

    def tls_failed(self, *args: object) -> None:
        pass


def pair(port_a: int, port_b: int, to_b: int, to_a: int, **kw: int) -> tuple[LtpCla, LtpCla]:
    """CLA a (engine 1) sends to 127.0.0.1:``to_b``, b (engine 2) to ``to_a``."""
    a = LtpCla(
        "ipn:1.0", LtpSettings(1, **kw), ("127.0.0.1", port_a), {"ipn:2.0": Peer(2, "ipn:2.0", ("127.0.0.1", to_b))}
    )
    b = LtpCla(
        "ipn:2.0", LtpSettings(2, **kw), ("127.0.0.1", port_b), {"ipn:1.0": Peer(1, "ipn:1.0", ("127.0.0.1", to_a))}
    )
    return a, b


def test_bundles_cross_real_udp_and_send_returns_after_the_far_store() -> None:
    async def main() -> None:
        pa, pb = udp_ports(2)
        a, b = pair(pa, pb, pb, pa, rate=20_000_000)
        sa, sb = Sink(), Sink()
        await a.start(sa)
        await b.start(sb)
        assert sa.sessions == [("ipn:2.0", True)] and a.peers_up() == {"ipn:2.0"}
        bundles = [random.Random(i).randbytes(200_000 + i) for i in range(5)]
        await asyncio.wait_for(asyncio.gather(*(a.send("ipn:2.0", x) for x in bundles)), 30)
        assert sorted(sb.got) == sorted(bundles)  # stored before each send returned
        assert a.stats["bundles_sent"] == 5 and b.stats["bundles_received"] == 5
        await asyncio.sleep(0.1)  # the last report-acks reach b
        assert not a.engine.exports and not b.engine.imports
        await a.stop()
        await b.stop()
        assert sa.sessions[-1] == ("ipn:2.0", False)

    asyncio.run(main())


def test_a_refused_bundle_fails_the_send_and_the_sender_keeps_it() -> None:
    async def main() -> None:
        pa, pb = udp_ports(2)
        a, b = pair(pa, pb, pb, pa)
        await a.start(Sink())
        await b.start(Sink(refuse=True))
        with pytest.raises(ClaError, match="SYS_CNCLD"):
            await asyncio.wait_for(a.send("ipn:2.0", b"x" * 5000), 10)
        assert b.stats["refused_store_full"] == 1
        await a.stop()
        await b.stop()

    asyncio.run(main())


def test_a_bundle_over_the_block_limit_is_refused_before_anything_is_sent() -> None:
    async def main() -> None:
        pa, pb = udp_ports(2)
        a, _ = pair(pa, pb, pb, pa, max_block=1000)
        await a.start(Sink())
        with pytest.raises(ClaError, match="block limit"):
            await a.send("ipn:2.0", b"x" * 1001)
        assert a.stats["export_sessions"] == 0
        await a.stop()

    asyncio.run(main())


def test_through_hilnet_link_with_delay_loss_and_a_window_closing_mid_block(tmp_path: Path) -> None:
    # a -> link end A (relay_a) ... link end B -> b, and back. 200 ms each way, 2 % loss, the link
    # down from 2 s to 4 s while the blocks are on their way.
    pa, pb, relay_a, relay_b = udp_ports(4)
    stats = tmp_path / "stats.json"
    link = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hilnet",
            "link",
            f"udp://127.0.0.1:{relay_a}?peer=127.0.0.1:{pa}",
            f"udp://127.0.0.1:{relay_b}?peer=127.0.0.1:{pb}",
            "--delay",
            "200ms",
            "--rate",
            "10Mbit/s",
            "--loss",
            "2%",
            "--up",
            "0s-2s,4s-10m",
            "--seed",
            "3",
            "--stats",
            str(stats),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )

    async def main() -> None:
        await asyncio.sleep(1.0)  # the link engine binds its ends
        a, b = pair(pa, pb, relay_a, relay_b, rate=1_000_000, rtt_ns=400_000_000, rto_margin_ns=300_000_000)
        sa, sb = Sink(), Sink()
        await a.start(sa)
        await b.start(sb)
        bundles = [random.Random(i).randbytes(300_000) for i in range(4)]
        await asyncio.wait_for(asyncio.gather(*(a.send("ipn:2.0", x) for x in bundles)), 60)
        assert sorted(sb.got) == sorted(bundles)  # intact, once each
        await asyncio.sleep(0.6)
        assert a.stats["export_open"] == 0 and b.stats["import_open"] == 0  # no session left open
        assert a.stats["red_bytes_resent"] > 0
        await a.stop()
        await b.stop()

    try:
        asyncio.run(main())
    finally:
        link.terminate()
        link.wait(10)
    ab = json.loads(stats.read_text())["directions"]["a->b"]
    assert ab["units_dropped"] > 0  # the link did lose and gate segments


def test_config_round_trips_and_builds_with_engine_ids_from_ipn_numbers() -> None:
    raw = {
        "type": "ltp",
        "listen": "127.0.0.1:0",
        "peers": {"ipn:7.0": "10.0.0.7:1113", "dtn://far/": "10.0.0.8:1113"},
        "engines": {"dtn://far/": 99},
        "rto_margin_ns": 2_000_000_000,
    }
    cfg = read_cla(FieldReader(raw, "", ""), 0, raw)
    assert isinstance(cfg, LtpConfig) and cfg.tunable("rto_margin_ns") == 2_000_000_000
    assert cfg.tunable("segment_bytes") == 1400
    assert read_cla(FieldReader(cla_json(cfg), "", ""), 0, cla_json(cfg)) == cfg
    cla = build_cla(cfg, node_id="ipn:5.0", clock=MonotonicClock(), max_bundle=1 << 20)
    assert isinstance(cla, LtpCla)
    assert cla.engine.settings.engine_id == 5 and cla.engine.settings.max_block == 1 << 20
    assert {p.node: p.engine for p in cla.peers.values()} == {"ipn:7.0": 7, "dtn://far/": 99}
    with pytest.raises(AgentError, match="engine id"):
        build_cla(
            LtpConfig(HostPort("127.0.0.1", 0), {"dtn://x/": HostPort("1.2.3.4", 1)}),
            node_id="ipn:5.0",
            clock=MonotonicClock(),
            max_bundle=1,
        )
    bad = {"type": "ltp", "peers": {}, "max_retries": 0}
    with pytest.raises(ControlError, match="max_retries"):
        read_cla(FieldReader(bad, "", ""), 0, bad)


SCENARIO = """hilnet: 1
name: ltp-two-agents
clock: {scale: 10, duration: 4m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
links:
  a-b: {ends: [a, b], medium: ethernet, cl: ltp, rate: 10Mbit/s, delay: 200ms, loss: 2%, up: [0s-30s, 50s-2m]}
traffic:
  - {name: t, from: a, to: b, start: 5s, every: 5s, count: 6, size: 300KiB}
faults:
  - {at: 12s, crash: b, restart-after: 5s}
expect: {delivered: all, duplicates: 0, intact: true, lost: 0}  # no deadline: a loaded host is slow, never lossy
"""


_NETNS = netns_available()


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        "loopback",
        pytest.param("netns", marks=[pytest.mark.netns, pytest.mark.skipif(not _NETNS[0], reason=str(_NETNS[1]))]),
    ],
)
def test_two_agents_run_a_scenario_over_ltp(tmp_path: Path, backend: str) -> None:
    # The receiver crashes at 12 s (scenario time) while blocks are on their way and restarts 5 s later.
    sc = tmp_path / "ltp.yaml"
    sc.write_text(SCENARIO)
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(sc), "--backend", backend, "--out", str(out), "-q", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    acked = [e for e in events if e["event"] == "acked" and e["node"] == "a"]
    assert len(acked) >= 6 and {e["cla"] for e in acked} == {"ltp"}
    status = {e["node"]: e["status"]["counters"] for e in events if e["event"] == "agent-status"}
    assert status["a"]["ltp:export_sessions"] >= 6  # b's counters restarted with it


def test_the_agents_contact_plan_reaches_each_peer_on_the_agents_clock() -> None:
    from hilnet.agent.config import AgentConfig
    from hilnet.scenario.contact import Contact

    s = 10**9
    agent = AgentConfig(
        node="rover",
        eid="ipn:1.0",
        store_path="unused",
        nodes={"rover": "ipn:1.0", "orbiter": "ipn:2.0", "dsn": "ipn:3.0"},
        contacts=(
            Contact("rover", "orbiter", 10 * s, 20 * s, 5000, 2 * s),
            Contact("orbiter", "rover", 10 * s, 20 * s, 4000, 3 * s),
            Contact("orbiter", "dsn", 0, 99 * s, 9, 1),
        ),
        epoch_ns=1000,
    )
    cfg = LtpConfig(
        HostPort("127.0.0.1", 0), {"ipn:2.0": HostPort("127.0.0.1", 9), "ipn:3.0": HostPort("127.0.0.1", 8)}
    )
    cla = build_cla(cfg, node_id="ipn:1.0", clock=MonotonicClock(), agent=agent)
    assert isinstance(cla, LtpCla)
    orbiter = cla.peers["ipn:2.0"].plan
    # each window ends a light time early: what is sent later would be in flight at the close
    assert [(w.start, w.end, w.rate, w.owlt) for w in orbiter.out] == [(1000 + 10 * s, 1000 + 18 * s, 5000, 2 * s)]
    assert [(w.start, w.end) for w in orbiter.back] == [(1000 + 10 * s, 1000 + 17 * s)]
    assert orbiter.round_trip(1000 + 15 * s) == 5 * s
    assert not cla.peers["ipn:3.0"].plan.planned  # no contact of ours with dsn: always open, configured rate
    assert cla.engine.settings.max_block == agent.max_bundle_size


def test_the_plan_follows_the_agents_start_after_a_held_configure():
    """A held agent's plan time 0 lies far ahead until its start: the LTP windows move with it."""
    from hilnet.agent.config import AgentConfig
    from hilnet.scenario.contact import Contact

    s = 1_000_000_000
    held = AgentConfig(
        node="rover",
        eid="ipn:1.0",
        store_path="unused",
        nodes={"rover": "ipn:1.0", "orbiter": "ipn:2.0"},
        contacts=(Contact("rover", "orbiter", 10 * s, 20 * s, 5000, 2 * s),),
        epoch_ns=10**18,  # as a held configure leaves it
    )
    cfg = LtpConfig(HostPort("127.0.0.1", 0), {"ipn:2.0": HostPort("127.0.0.1", 9)})
    cla = build_cla(cfg, node_id="ipn:1.0", clock=MonotonicClock(), agent=held)
    assert cla.peers["ipn:2.0"].plan.out[0].start == 10**18 + 10 * s
    cla.plan_moved(dataclasses.replace(held, epoch_ns=5000))
    (w,) = cla.peers["ipn:2.0"].plan.out
    assert (w.start, w.end) == (5000 + 10 * s, 5000 + 18 * s)
    peer = cla.peers["ipn:2.0"]
    assert cla.engine.peers[peer.engine] is peer and cla.engine.pacer._queues[peer.engine].peer is peer
