"""The engine's loop logic on a virtual clock, and its behaviour on bad input.

Loop logic runs with a VirtualClock and explicit ``run_once()`` calls over
loopback UDP sockets (a datagram sent on loopback is readable at once), so
deadlines are exact and nothing sleeps through real time. The bad-input tests
run the engine thread for real: random bytes, oversized frames and ports that
vanish mid-run must stop only the link concerned.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import tty

import pytest
from link_endpoint_harness import EthHarness, PtyHarness, UdpHarness, netns_available

from hilnet.clock import VirtualClock
from hilnet.errors import EndpointError, LinkError, SpecError
from hilnet.link.endpoints import open_endpoint
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig, ScheduleEvent

MS = 1_000_000


def _recv_all(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


@pytest.fixture
def udp():
    h = UdpHarness()
    yield h
    h.close()


def test_virtual_clock_delivers_exactly_at_the_delay(udp):
    clock = VirtualClock(1_000 * MS)
    engine = Engine(clock)
    a, b = udp.specs()
    engine.add_link("v", a, b, ab=DirectionConfig(delay_ns=10 * MS))
    try:
        engine.run_once()  # registers the sockets
        udp.send("a", b"one")
        engine.run_once()  # reads it at t=1000 ms
        clock.advance(10 * MS - 1)
        engine.run_once()
        assert _recv_all(udp.socks["b"]) == []
        clock.advance(1)
        engine.run_once()
        time.sleep(0.01)  # loopback hand-over to the agent's socket
        assert _recv_all(udp.socks["b"]) == [b"one"]
    finally:
        engine.close()


def test_virtual_clock_schedule_and_live_control(udp):
    clock = VirtualClock(0)
    events = []
    engine = Engine(clock, on_event=events.append)
    a, b = udp.specs()
    handle = engine.add_link("v", a, b, schedule_ab=[ScheduleEvent(at_ns=5 * MS, up=False)])
    try:
        engine.run_once()
        clock.set(5 * MS)
        engine.run_once()
        assert handle.stats()["a->b"]["up"] is False
        assert handle.stats()["b->a"]["up"] is True
        udp.send("a", b"lost")
        engine.run_once()
        handle.set_up(True, at_ns=7 * MS, direction="a->b")  # as the controller would, from any thread
        handle.change(at_ns=7 * MS, rate_bps=1_000_000)
        clock.set(7 * MS)
        engine.run_once()
        engine.run_once()
        udp.send("a", b"kept")
        engine.run_once()
        clock.advance(1 * MS)  # 1 ms covers (4+28)*8 bits at 1 Mbit/s
        engine.run_once()
        time.sleep(0.01)
        assert _recv_all(udp.socks["b"]) == [b"kept"]
        st = handle.stats()["a->b"]
        assert st["drops"] == {"down": 1} and st["units_out"] == 1
        kinds = [(e["event"], e["direction"], e.get("at_ns")) for e in events if e["event"] in ("up", "down")]
        assert kinds == [("down", "a->b", 5 * MS), ("up", "a->b", 7 * MS)]
        with pytest.raises(Exception, match="no direction"):
            handle.set_up(False, direction="sideways")
    finally:
        engine.close()


def test_mismatched_endpoints_are_refused(tmp_path, udp):
    engine = Engine(VirtualClock())
    try:
        with pytest.raises(SpecError, match="cannot join serial endpoint .* to datagram endpoint"):
            engine.add_link("x", f"pty://{tmp_path}/p", udp.specs()[1])
        assert not os.path.lexists(tmp_path / "p"), "the pty opened first is closed again"
        with pytest.raises(SpecError, match="unknown scheme 'ftp'"):
            engine.add_link("y", "ftp://x", udp.specs()[1])
        with pytest.raises(EndpointError, match="no such interface"):
            engine.add_link("z", "eth://h5nosuchif0", "eth://h5nosuchif1")
    finally:
        engine.close()


class Running:
    def __init__(self):
        self.events: list[dict] = []
        self.engine = Engine(on_event=self._event)

    def _event(self, ev):
        self.events.append(ev)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.engine.stop()
        self.engine.join(5)


def test_a_failing_listener_ends_the_run_with_its_cause(udp):
    seen = []

    def listener(ev):
        seen.append(threading.current_thread())
        if ev["event"] == "down":
            raise OSError("disk full")

    engine = Engine(on_event=listener)
    a, b = udp.specs()
    handle = engine.add_link("l", a, b)
    engine.start()
    try:
        assert handle.stats()["a->b"]["up"] is True
        handle.set_up(False, direction="a->b")
        deadline = time.monotonic() + 3
        while engine.failure is None and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.join(5)
        assert not handle.alive, "the engine stops once its listener failed"
        for call in (engine.check, handle.stats, lambda: handle.set_up(True)):
            with pytest.raises(LinkError, match="listener failed on a 'down' event: OSError: disk full"):
                call()
        assert isinstance(engine.failure.__cause__, OSError)
        assert seen and all(t.name != "hilnet-link-engine" for t in seen), "the listener never runs on the loop"
    finally:
        engine.stop()
        engine.join(5)


def test_a_failing_listener_raises_from_run_once(udp):
    clock = VirtualClock(0)
    engine = Engine(clock, on_event=lambda ev: 1 / 0)
    a, b = udp.specs()
    engine.add_link("v", a, b, schedule_ab=[ScheduleEvent(at_ns=5 * MS, up=False)])
    try:
        engine.run_once()
        clock.set(5 * MS)
        with pytest.raises(LinkError, match="ZeroDivisionError"):
            engine.run_once()
    finally:
        engine.close()


def test_stats_come_after_the_events_before_them(udp):
    events = []
    engine = Engine(on_event=lambda ev: (time.sleep(0.01), events.append(ev)))  # a slow listener
    a, b = udp.specs()
    handle = engine.add_link("l", a, b)
    engine.start()
    try:
        handle.set_up(False)
        handle.set_up(True, at_ns=engine.clock.now_ns() + 1 * MS)
        time.sleep(0.01)
        handle.stats()
        assert [e["event"] for e in events] == ["down", "down", "up", "up"]
    finally:
        engine.stop()
        engine.join(5)
    assert not handle.alive and events[-1]["event"] == "link-stopped", "a stopped handle's events are all out"


def test_random_bytes_and_oversize_do_not_crash(tmp_path):
    u1, u2, p = UdpHarness(), UdpHarness(), PtyHarness(tmp_path)
    try:
        with Running() as r:
            a, b = u1.specs()
            small_b = open_endpoint(b)
            small_b.max_unit = 100  # as if b's side had a small MTU
            l1 = r.engine.add_link("small", a, small_b)
            l2 = r.engine.add_link("udp", *u2.specs())
            l3 = r.engine.add_link("pty", *p.specs())
            r.engine.start()
            p.connect()
            rng = random.Random(7)
            junk = [rng.randbytes(rng.randrange(1, 1400)) for _ in range(200)]
            for j in junk:
                u1.send("a", j)
                u2.send("a", j)
                time.sleep(0.0002)
            blob = rng.randbytes(20_000)
            p.send("a", blob)
            assert p.recv("b", len(blob), 5) == blob
            got = []
            deadline = time.monotonic() + 3
            while len(got) < len(junk) and time.monotonic() < deadline:
                c = u2.recv("b", 1, 0.1)
                if c:
                    got.append(c)
                    got.extend(_recv_all(u2.socks["b"]))
            assert got == junk
            small = [j for j in junk if len(j) <= 100]
            time.sleep(0.1)
            assert _recv_all(u1.socks["b"]) == small
            st = l1.stats()["a->b"]
            assert st["drops"] == {"oversize": len(junk) - len(small)}
            assert st["units_in"] == len(junk)
            assert any(e.get("reason") == "oversize" and e["link"] == "small" for e in r.events)
            assert l1.alive and l2.alive and l3.alive
    finally:
        for h in (u1, u2, p):
            h.close()


def test_vanished_serial_port_stops_only_its_link():
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.close(slave)
    u = UdpHarness()
    peer_master, peer_slave = os.openpty()
    tty.setraw(peer_slave)
    try:
        with Running() as r:
            lp = r.engine.add_link(
                "uart", f"serial://{name}?baud=115200", f"serial://{os.ttyname(peer_slave)}?baud=115200"
            )
            lu = r.engine.add_link("udp", *u.specs())
            r.engine.start()
            u.connect()
            os.write(master, b"before")
            time.sleep(0.1)
            assert os.read(peer_master, 100) == b"before"
            os.close(master)  # the "USB adapter" is pulled out
            master = -1
            deadline = time.monotonic() + 3
            while lp.alive and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not lp.alive and "uart.a" in (lp.error or "")
            errs = [e for e in r.events if e["event"] == "endpoint-error"]
            assert errs and errs[0]["link"] == "uart" and errs[0]["end"] == "a"
            u.send("a", b"still here")
            assert u.recv("b", 10, 2) == b"still here"
            assert lu.alive
    finally:
        for fd in (master, peer_master, peer_slave):
            if fd >= 0:
                os.close(fd)
        u.close()


@pytest.mark.netns
def test_deleted_veth_stops_only_its_link():
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    h = EthHarness()
    u = UdpHarness()
    try:
        with Running() as r:
            le = r.engine.add_link("eth", *h.specs())
            lu = r.engine.add_link("udp", *u.specs())
            r.engine.start()
            h.connect()
            h.send("a", b"f" * 60)
            assert h.recv("b", 60, 2) == b"f" * 60
            h.delete_emulator_if("b")
            h.send("a", b"g" * 60)  # now b's send fails, or its socket reports the loss
            deadline = time.monotonic() + 3
            while le.alive and time.monotonic() < deadline:
                h.send("a", b"g" * 60)
                time.sleep(0.05)
            assert not le.alive, "the link with a deleted interface must stop"
            assert any(e["event"] == "endpoint-error" and e["link"] == "eth" for e in r.events)
            u.send("b", b"other link")
            assert u.recv("a", 10, 2) == b"other link"
            assert lu.alive
    finally:
        h.close()
        u.close()
