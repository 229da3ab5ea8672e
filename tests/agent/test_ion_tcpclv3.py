"""Interop with a real ION 4.1.3 over TCPCLv3 (RFC 7242), both ways, through `hilnet link`.

ION -> hilnet -> ION: ION node 1's bpsendfile sends files to ION node 3 through
a hilnet agent relay; hilnet -> ION -> hilnet: a hilnet agent sends bundles to
another through an ION relay. Every hop is an emulated link (`hilnet link`
with tcp:// endpoints, 40 ms each way), and the relay's outbound link has an
outage while the bundles arrive, so the relay holds them and sends them on
when the link is back. Payloads arrive intact (SHA-256) and once. Each ION
node runs in its own IPC namespace and everything is stopped afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_procs import Procs, free_port
from ion_nodes import IonNode, wait_until
from ion_support import ion  # noqa: F401  (the fixture)

from hilnet.agent.payload import payload_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

OUTAGE = (15, 23)  # s after the relay's outbound link starts: down in between
DELAY = "40ms"


class Links:
    """`hilnet link` processes of one test, stopped (SIGTERM) at the end."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, a: tuple[int, int], b: tuple[int, int], *extra: str) -> tuple[float, float]:
        """A link between relay port a[0] (towards a[1]) and b[0] (towards b[1]).

        Returns ``(lo, hi)``: the link's clock started (its ``--up`` times count) in between.
        """
        argv = [
            sys.executable, "-m", "hilnet", "link",
            f"tcp://127.0.0.1:{a[0]}?peer=127.0.0.1:{a[1]}",
            f"tcp://127.0.0.1:{b[0]}?peer=127.0.0.1:{b[1]}",
            "--delay", DELAY, "--name", name, "--stats", str(self.tmp / f"{name}.json"), *extra,
        ]  # fmt: skip
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        lo = time.monotonic()
        end = lo + 30
        while b"link " not in log.read_bytes():  # it prints "link NAME: ..." right after its clock starts
            assert p.poll() is None and time.monotonic() < end, f"hilnet link {name} did not start: {log.read_text()}"
            lo = time.monotonic()
            time.sleep(0.005)
        return lo, time.monotonic()

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def world(tmp_path):
    procs, links, nodes = Procs(tmp_path), Links(tmp_path), []
    yield procs, links, nodes
    procs.stop_all()
    links.stop()
    for n in nodes:
        n.stop()
    assert not [pid for n in nodes for pid in n.pids()], "ION processes outlived the test"


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


@pytest.mark.parametrize("keepalive_s", [10, 2], ids=["session-outlives-the-outage", "session-ends-and-comes-back"])
def test_ion_to_hilnet_to_ion_through_links_with_delay_and_an_outage(ion, world, tmp_path, keepalive_s):  # noqa: F811
    """With a 2 s keepalive the relay's session to ION 3 ends in the outage (idle) and is dialled again after it."""
    procs, links, nodes = world
    p1, p3, ph = free_port(), free_port(), free_port()
    r1a, r1b, r2a, r2b = (free_port() for _ in range(4))
    contacts = [(1, 2), (2, 1), (2, 3), (3, 2)]
    links.start("ion1-h2", (r1a, p1), (r1b, ph))
    lo, hi = links.start("h2-ion3", (r2a, ph), (r2b, p3), "--up", f"0s-{OUTAGE[0]}s,{OUTAGE[1]}s-1h")
    # hilnet first: an ION whose first connect finds nobody behind the link loses the next bundle it
    # dequeues for that neighbour (ION 4.1.3's tcpcli, after "Can't get TCPCL contact header").
    procs.start("h2")
    peers = {"ipn:1.0": f"127.0.0.1:{r1b}", "ipn:3.0": f"127.0.0.1:{r2a}"}
    procs.configure(
        "h2",
        "ipn:2.0",
        [{"type": "tcpclv3", "listen": f"127.0.0.1:{ph}", "peers": peers, "keepalive_s": keepalive_s}],
        routes={"ipn:3.0": "ipn:3.0", "ipn:1.0": "ipn:1.0"},
    )
    n1 = IonNode(ion, tmp_path / "ion1", 1, p1, {2: f"127.0.0.1:{r1a}"}, contacts)
    n3 = IonNode(ion, tmp_path / "ion3", 3, p3, {2: f"127.0.0.1:{r2b}"}, contacts)
    nodes += [n1, n3]
    n1.start()
    n3.start()
    wait_until(lambda: {e["peer"] for e in procs.of("h2", "session-up")} >= {"ipn:1.0", "ipn:3.0"}, 30, "sessions")
    files = []
    for i, size in enumerate((1_000, 64_000, 300_000)):
        f = tmp_path / f"file{i}"
        f.write_bytes(os.urandom(size))
        files.append(f)
    stall = keepalive_s == 10
    where = n3.receive_files(len(files) if stall else 0)
    _sleep_until(hi + OUTAGE[0] + 0.5)  # the relay's outbound link is down now
    for f in files:
        n1.send_file(f, n3.app_eid())
    wait_until(lambda: len(procs.of("h2", "received")) == 3, 15, "the relay to take all three")
    assert time.monotonic() < lo + OUTAGE[1], "the relay took them only after the outage: the test proves nothing"
    want = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    if stall:  # the session lived through the outage: each bundle once
        assert sorted(n3.wait_received(where, len(files), 90)) == sorted(want)
    else:
        # A bundle whose octets sat in the stalled link when the relay's session ended reaches ION
        # when the link is back, and the relay sends it again on its new session: ION, which keeps
        # no record of what it delivered, may hand it over twice. Nothing is lost or damaged.
        assert set(n3.wait_digests(where, set(want), 90)) == set(want)
    assert time.monotonic() >= lo + OUTAGE[1]
    assert {e["cla"] for e in procs.of("h2", "received")} == {"tcpclv3"}
    wait_until(lambda: len(procs.of("h2", "acked")) == 3, 15, "ION 3's acks at the relay")
    assert procs.status("h2")["stored"] == 0
    downs = [e for e in procs.of("h2", "session-down") if e["peer"] == "ipn:3.0"]
    assert bool(downs) != stall, downs


def test_hilnet_to_ion_to_hilnet_through_links_with_delay_and_an_outage(ion, world, tmp_path):  # noqa: F811
    procs, links, nodes = world
    h1, p2, h3 = free_port(), free_port(), free_port()
    r1a, r1b, r2a, r2b = (free_port() for _ in range(4))
    links.start("h1-ion2", (r1a, h1), (r1b, p2))
    lo, hi = links.start("ion2-h3", (r2a, p2), (r2b, h3), "--up", f"0s-{OUTAGE[0]}s,{OUTAGE[1]}s-1h")
    contacts = [(1, 2), (2, 1), (2, 3), (3, 2)]
    for name, eid, listen, peer in (("h1", "ipn:1.0", h1, r1a), ("h3", "ipn:3.0", h3, r2b)):
        procs.start(name)  # before ION: see the first test
        cla = {"type": "tcpclv3", "listen": f"127.0.0.1:{listen}", "peers": {"ipn:2.0": f"127.0.0.1:{peer}"}}
        procs.configure(name, eid, [cla], routes={"*": "ipn:2.0"})
    n2 = IonNode(ion, tmp_path / "ion2", 2, p2, {1: f"127.0.0.1:{r1b}", 3: f"127.0.0.1:{r2a}"}, contacts)
    nodes.append(n2)
    n2.start()
    for name in ("h1", "h3"):
        wait_until(lambda name=name: procs.of(name, "session-up"), 30, f"{name}'s session with ION")
    _sleep_until(hi + OUTAGE[0] + 0.5)
    sizes = (1_000, 64_000, 300_000)
    for seed, size in enumerate(sizes):
        procs.call("h1", {"cmd": "inject", "dest": "ipn:3.0", "size": size, "seed": seed})
    wait_until(lambda: len(procs.of("h1", "acked")) == 3, 30, "ION 2 to take all three")
    assert time.monotonic() < lo + OUTAGE[1], "ION took them only after the outage: the test proves nothing"
    wait_until(lambda: len(procs.of("h3", "delivered")) == 3, 90, "delivery at h3")
    assert time.monotonic() >= lo + OUTAGE[1]
    want = {hashlib.sha256(payload_for(seed, size)).hexdigest() for seed, size in enumerate(sizes)}
    assert {e["sha256"] for e in procs.of("h3", "delivered")} == want
    assert [e["by"] for e in procs.of("h1", "acked")] == ["ipn:2.0"] * 3
    assert {e["cla"] for e in procs.of("h3", "received")} == {"tcpclv3"}
