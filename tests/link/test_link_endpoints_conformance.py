"""One conformance suite for every endpoint kind that can run here.

pty, udp and tcp always run; eth runs on veth pairs into network namespaces
when the test runs as root, rfc2217 against a real ser2net when it is
installed (each skipped with the reason otherwise). Each test
drives a real engine thread on the host's monotonic clock, with the agents'
side played by the harness, and checks: bytes intact and in order, delay and
rate applied, outages drop (or stall, for the tcp relay), clean close.
Time bounds are loose enough for a busy 2-core CI machine; the accuracy
figures themselves are measured by benchmarks/link_accuracy.py.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from link_endpoint_harness import KINDS, netns_available, ser2net_available

from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig, Medium, wire_bits

MEDIUM = {
    "pty": Medium.SERIAL,
    "rfc2217": Medium.SERIAL,
    "udp": Medium.DATAGRAM,
    "tcp": Medium.STREAM,
    "eth": Medium.ETHERNET,
}
_NETNS_REASON = netns_available()
_SER2NET_REASON = ser2net_available()


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    if request.param == "eth" and _NETNS_REASON:
        pytest.skip(f"eth endpoint: {_NETNS_REASON}")
    if request.param == "rfc2217" and _SER2NET_REASON:
        pytest.skip(f"rfc2217 endpoint: {_SER2NET_REASON}")
    return request.param


class Rig:
    """A harness plus a running engine with one link between its two ends."""

    def __init__(self, harness):
        self.h = harness
        self.events: list[dict] = []
        self.engine: Engine | None = None
        self.link = None

    def start(self, ab: DirectionConfig | None = None, ba: DirectionConfig | None = None, **kw):
        self.engine = Engine(on_event=self.events.append)
        a, b = self.h.specs()
        self.link = self.engine.add_link("l1", a, b, ab=ab, ba=ba, **kw)
        self.engine.start()
        self.h.connect()
        return self

    def stop(self):
        if self.engine is not None:
            self.engine.stop()
            self.engine.join(5)
            self.engine = None


@pytest.fixture
def rig(kind, tmp_path):
    h = KINDS[kind](tmp_path)
    r = Rig(h)
    try:
        yield r
    finally:
        r.stop()
        h.close()


def _messages(n: int, seed: int) -> list[bytes]:
    # Different sizes, each numbered, at least 46 bytes so no Ethernet padding applies.
    return [f"{seed}:{i:05d}:".encode().ljust(46 + (i * 37) % 300, bytes([65 + i % 26])) for i in range(n)]


@pytest.mark.parametrize("way", ["a->b", "b->a"])
def test_bytes_arrive_intact_and_in_order(rig, way):
    rig.start()
    src, dst = way.split("->")
    msgs = _messages(200, 1)
    if rig.h.kind == "tcp" and src == "b":
        rig.h.send("a", b"hello")  # a connection exists only once a has opened one
        assert rig.h.recv("b", 5, 2) == b"hello"
    for m in msgs:
        rig.h.send(src, m)
        if rig.h.datagrams:
            time.sleep(0.0002)  # stay below the agents' socket buffers
    want = b"".join(msgs)
    got = rig.h.recv(dst, len(want), 5)
    assert got == want
    st = rig.link.stats()[way]
    framed = len(want) + len(msgs) * rig.h.header_bytes  # eth counts the Ethernet header
    assert st["bytes_in"] == framed and st["bytes_out"] == framed
    assert not st["drops"]


def test_delay_is_applied(rig):
    delay_ms = 40
    rig.start(DirectionConfig(delay_ns=delay_ms * 1_000_000))
    if rig.h.kind == "tcp":
        rig.h.send("a", b"x")
        assert rig.h.recv("b", 1, 2) == b"x"
    for _ in range(5):
        t0 = time.monotonic()
        rig.h.send("a", b"d" * 64)
        got = rig.h.recv("b", 64, 2)
        dt = (time.monotonic() - t0) * 1000
        assert got == b"d" * 64
        assert delay_ms <= dt <= delay_ms + 25, f"one-way time {dt:.2f} ms for a {delay_ms} ms delay"
    # the other direction has no delay configured... unless ba defaults to ab
    t0 = time.monotonic()
    rig.h.send("b", b"r" * 64)
    assert rig.h.recv("a", 64, 2) == b"r" * 64
    assert (time.monotonic() - t0) * 1000 >= delay_ms  # ba defaults to ab


def test_rate_is_applied(rig):
    kind = rig.h.kind
    if kind in ("pty", "rfc2217"):
        cfg = DirectionConfig(baud=115200, bits_per_byte=10)
        units = [b"s" * 230] * 10
        line_bps = 115200
    else:
        cfg = DirectionConfig(rate_bps=2_000_000)
        size = 20_000 if kind == "tcp" else 1000
        units = [bytes([i % 251]) * size for i in range(40 if kind != "tcp" else 5)]
        line_bps = 2_000_000
    rig.start(cfg)
    if kind == "tcp":
        rig.h.send("a", b"x")
        assert rig.h.recv("b", 1, 2) == b"x"
    bits = sum(wire_bits(MEDIUM[kind], len(u) + rig.h.header_bytes, 10) for u in units)
    expected = bits / line_bps
    total = sum(len(u) for u in units)
    t0 = time.monotonic()
    for u in units:
        rig.h.send("a", u)
    got = rig.h.recv_times("b", total, expected * 3 + 2)
    assert sum(n for _, n in got) == total
    took = got[-1][0] - t0
    assert expected * 0.95 <= took <= expected * 1.15 + 0.02, (
        f"{total} bytes took {took:.3f}s, line time {expected:.3f}s"
    )


def test_outage_drops_or_stalls(rig):
    rig.start()
    h = rig.h
    if h.kind == "tcp":
        h.send("a", b"x")
        assert h.recv("b", 1, 2) == b"x"
    rig.link.set_up(False)
    time.sleep(0.05)
    lost = b"L" * 100
    h.send("a", lost)
    assert h.recv("b", 100, 0.3) == b"", "nothing may be delivered while the link is down"
    rig.link.set_up(True)
    if h.kind == "tcp":
        # The relay stalls instead of dropping: the bytes come once the link is up.
        assert h.recv("b", 100, 2) == lost
        assert rig.link.stats()["a->b"]["drops"] == {}
    else:
        time.sleep(0.05)
        h.send("a", b"K" * 100)
        assert h.recv("b", 100, 2) == b"K" * 100
        dropped = rig.link.stats()["a->b"]["drops"].get("down", 0)
        # A remote UART's bytes come in line-time chunks (about 1 ms each), so one send may be several units.
        assert dropped == 1 if h.kind != "rfc2217" else dropped >= 1
    kinds = [e["event"] for e in rig.events if e.get("direction") == "a->b"]
    assert "down" in kinds and "up" in kinds
    downs = [e for e in rig.events if e.get("event") == "down"]
    assert all(e["applied_ns"] - e["at_ns"] < 5_000_000 for e in downs)  # applied within 5 ms


def test_clean_close(rig):
    rig.start()
    h = rig.h
    h.send("a", b"z" * 50)
    assert h.recv("b", 50, 2) == b"z" * 50
    if h.kind == "tcp":
        h.socks["a"].close()
        del h.socks["a"]
        # closing one side closes the pair: agent b's connection sees EOF
        s = h.socks["b"]
        s.settimeout(2)
        assert s.recv(10) == b""
    rig.stop()
    assert not rig.link.alive
    stopped = [e for e in rig.events if e["event"] == "link-stopped"]
    assert stopped and stopped[0]["error"] is None
    if h.kind == "pty":
        assert not os.path.lexists(h.paths["a"]) and not os.path.lexists(h.paths["b"])
    if h.kind in ("udp", "tcp"):
        # the engine's ports are released
        for end in "ab":
            kind = socket.SOCK_DGRAM if h.kind == "udp" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", h.engine_port[end]))
