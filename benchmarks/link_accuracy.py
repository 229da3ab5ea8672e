"""How exactly the link engine keeps delay, rate, baud and schedule edges, and how fast it forwards.

Run (as root for the veth parts; they are skipped with the reason otherwise):

    python benchmarks/link_accuracy.py            # about 1.5 minutes
    python benchmarks/link_accuracy.py --quick    # shorter runs, rougher figures

The engine runs in a child process (as ``hilnet link`` would), the traffic
generator and receiver in this one, so they do not share an interpreter lock.
Every figure is printed beside a baseline measured in the same run without
the emulator (a direct UDP or veth path), and beside its target. Receive
times are kernel stamps (SO_TIMESTAMPNS, CLOCK_REALTIME) taken on the
receiver's socket; send times are CLOCK_REALTIME read just before sendto().
Nothing here asserts: the script prints figures and which targets were met.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import platform
import select
import socket
import statistics
import struct
import subprocess
import sys
import time
import tty
import uuid

NS = 1_000_000_000
MS = 1_000_000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ETH_P_ALL = 3
ETHERTYPE = 0x88B5
RESULTS: list[tuple[str, bool, str]] = []


def target(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))


# --- engine in a child process -----------------------------------------------------------


def _engine_child(conn, a, b, cfg, sched_offsets, realtime):
    from hilnet.link.engine import Engine
    from hilnet.link.shaper import DirectionConfig, ScheduleEvent

    engine = Engine(realtime_priority=10 if realtime else None)
    t0m = time.monotonic_ns() + 300 * MS  # schedules count from a moment just ahead
    offset = time.time_ns() - time.monotonic_ns()
    sched = [ScheduleEvent(at_ns=t0m + off, up=up) for off, up in sched_offsets]
    handle = engine.add_link("bench", a, b, ab=DirectionConfig(**cfg), schedule_ab=sched)
    engine.start()
    conn.send(("ready", t0m, offset))
    conn.recv()  # "stop"
    engine.stop()
    engine.join(10)
    conn.send(handle.stats())


class EngineProc:
    realtime = False  # set from --realtime

    def __init__(self, a: str, b: str, cfg: dict, sched_offsets=()):
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.p = ctx.Process(
            target=_engine_child, args=(child, a, b, cfg, list(sched_offsets), self.realtime), daemon=True
        )
        self.p.start()
        msg = self.conn.recv()
        _, self.t0_mono, self.real_minus_mono = msg
        self.t0_real = self.t0_mono + self.real_minus_mono
        time.sleep(0.05)

    def stop(self) -> dict:
        self.conn.send("stop")
        stats = self.conn.recv()
        self.p.join(10)
        return stats


# --- helpers ----------------------------------------------------------------------------


def udp_socket(port: int = 0, rcvbuf: int = 16 << 20) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    for opt in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE first (root)
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
            break
        except OSError:
            continue
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setblocking(False)
    return s


def drain(sock: socket.socket, out: list, limit: int = 10_000) -> None:
    """Append (kernel receive realtime ns, payload) for everything waiting."""
    for _ in range(limit):
        try:
            data, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        t = time.time_ns()
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack_from("@qq", cdata)
                t = sec * NS + nsec
        out.append((t, data))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return v[k]


def paced_send(send, rate_per_s: float, duration_s: float, make, poll=None, burst_ns: int = MS) -> int:
    """Call send(make(i)) at ``rate_per_s`` for ``duration_s``.

    Sends go out in bursts once per ``burst_ns`` (each stamped on its own) and
    the generator sleeps in between, so it leaves the CPU to the engine
    instead of spinning beside it on a 2-core machine.
    """
    period = NS / rate_per_s
    start = time.monotonic_ns()
    end = start + int(duration_s * NS)
    i = 0
    while True:
        now = time.monotonic_ns()
        if now >= end:
            return i
        while start + int(i * period) <= now:
            send(make(i))
            i += 1
        if poll is not None:
            poll()
        nxt = max(start + int(i * period), now + burst_ns)
        left = nxt - time.monotonic_ns()
        if left > 0:
            time.sleep(left / NS)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 1. delay error ---------------------------------------------------------------------


def one_way(rate: int, duration: float, via_engine: bool, delay_ns: int) -> list[float]:
    rx = udp_socket()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    eng = None
    if via_engine:
        pa, pb = free_udp_port(), free_udp_port()
        eng = EngineProc(
            f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
            f"udp://127.0.0.1:{pb}?peer=127.0.0.1:{rx.getsockname()[1]}",
            {"delay_ns": delay_ns},
        )
        dest = ("127.0.0.1", pa)
    else:
        dest = rx.getsockname()
    got: list = []
    pad = b"\0" * 84

    def make(i):
        return struct.pack("!Qq", i, time.time_ns()) + pad

    sent = paced_send(lambda d: tx.sendto(d, dest), rate, duration, make, poll=lambda: drain(rx, got, 64))
    end = time.monotonic() + delay_ns / NS + 0.3
    while time.monotonic() < end:
        drain(rx, got)
        time.sleep(0.001)
    if eng:
        eng.stop()
    rx.close()
    tx.close()
    lat = []
    for t, data in got:
        _, sent_ns = struct.unpack_from("!Qq", data)
        lat.append((t - sent_ns - delay_ns) / 1000)  # us
    return lat, sent


def bench_delay(quick: bool) -> None:
    delay = 10 * MS
    print("\n== 1. delay error (emulated one-way time minus configured 10 ms), us; 100-byte UDP datagrams")
    print(f"{'rate':>10} {'path':>34} {'n':>7} {'p50':>9} {'p99':>9} {'p99.9':>9} {'max':>9}")
    modes = [False, True] if os.geteuid() == 0 else [EngineProc.realtime]
    for rate in (1_000, 10_000):
        dur = 1.5 if quick else 3.0
        base, _ = one_way(rate, dur, False, 0)
        rows = [("baseline (direct udp)", base, None)]
        for rt in modes:
            saved, EngineProc.realtime = EngineProc.realtime, rt
            emu, sent = one_way(rate, dur, True, delay)
            EngineProc.realtime = saved
            rows.append((f"emulator error, {'SCHED_FIFO' if rt else 'normal prio'}", emu, (rt, sent)))
        for name, lat, extra in rows:
            print(
                f"{rate:>8}/s {name:>34} {len(lat):>7} {pct(lat, 50):>9.1f} {pct(lat, 99):>9.1f} {pct(lat, 99.9):>9.1f} {max(lat or [0]):>9.1f}"
            )
            if extra:
                rt, sent = extra
                p99 = pct(lat, 99)
                target(
                    f"delay error p99 <= 200 us at {rate}/s ({'SCHED_FIFO' if rt else 'normal priority'})",
                    p99 <= 200 and len(lat) >= 0.999 * sent,
                    f"p99 {p99:.1f} us, delivered {len(lat)}/{sent}",
                )


# --- 2. rate ----------------------------------------------------------------------------


def bench_rate(quick: bool) -> None:
    print("\n== 2. achieved rate vs configured (UDP, 1400-byte datagrams, offered 1.25x, wire bits = (len+28)*8)")
    print(f"{'configured':>12} {'1 s windows':>26} {'100 ms windows p1..p99':>28} {'delivered':>10}")
    size = 1400
    wire = (size + 28) * 8
    for mbit in (1, 10, 100):
        bps = mbit * 1_000_000
        rx = udp_socket()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        pa, pb = free_udp_port(), free_udp_port()
        eng = EngineProc(
            f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
            f"udp://127.0.0.1:{pb}?peer=127.0.0.1:{rx.getsockname()[1]}",
            {"rate_bps": bps, "queue_bytes": 4 << 20},
        )
        got: list = []
        dur = 2.2 if quick else 3.2
        pkt = b"r" * size
        paced_send(
            lambda d: tx.sendto(d, ("127.0.0.1", pa)),
            1.25 * bps / wire,
            dur,
            lambda i: pkt,
            poll=lambda: drain(rx, got, 64),
        )
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            drain(rx, got)
        st = eng.stop()
        rx.close()
        tx.close()
        times = sorted(t for t, _ in got)
        # skip the first 200 ms (the queue filling), then whole windows
        start = times[0] + 200 * MS if times else 0

        def windows(w_ns):
            out = []
            t = start
            while t + w_ns <= times[-1]:
                n = sum(1 for x in times if t <= x < t + w_ns)
                out.append(n * wire / (w_ns / NS) / bps)
                t += w_ns
            return out

        w1 = windows(NS)
        w100 = windows(100 * MS)
        s1 = "  ".join(f"{x * 100:.2f}%" for x in w1)
        print(
            f"{mbit:>6} Mbit/s {s1:>26} {pct(w100, 1) * 100:>12.2f}% ..{pct(w100, 99) * 100:>7.2f}% {len(got):>10}"
            f"   drops {st['a->b']['drops']}"
        )
        ok = bool(w1) and all(abs(x - 1) <= 0.01 for x in w1)
        target(
            f"rate within 1 % over 1 s at {mbit} Mbit/s",
            ok,
            " ".join(f"{x * 100:.2f}%" for x in w1) or "no full window",
        )


# --- 3. serial --------------------------------------------------------------------------


def bench_serial(quick: bool, tmp: str) -> None:
    print("\n== 3. serial byte rate on ptys (8N1: baud/10 bytes/s), writer offers more than the line carries")
    print(f"{'baud':>8} {'expected B/s':>13} {'achieved B/s':>13} {'error':>9} {'bytes':>8}")
    for baud in (9600, 115200, 921600):
        pa, pb = os.path.join(tmp, f"a{baud}"), os.path.join(tmp, f"b{baud}")
        eng = EngineProc(f"pty://{pa}", f"pty://{pb}", {"baud": baud, "bits_per_byte": 10, "queue_bytes": 1 << 22})
        fa = os.open(pa, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        fb = os.open(pb, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fa)
        tty.setraw(fb)
        expected = baud / 10
        dur = (2.0 if quick else 3.0) if baud > 9600 else (3.0 if quick else 5.0)
        offer = int(expected * dur * 1.1)
        block = b"s" * 1024
        written = 0
        arrivals: list[tuple[int, int]] = []
        end = time.monotonic() + dur + 0.5
        while time.monotonic() < end:
            if written < offer:
                try:
                    written += os.write(fa, block[: min(1024, offer - written)])
                except BlockingIOError:
                    pass
            r, _, _ = select.select([fb], [], [], 0.0005)
            if r:
                try:
                    data = os.read(fb, 65536)
                    arrivals.append((time.monotonic_ns(), len(data)))
                except BlockingIOError:
                    pass
        os.close(fa)
        os.close(fb)
        eng.stop()
        # steady state: from the first arrival after 0.3 s to the last before the writer ran dry
        t_first = arrivals[0][0]
        steady = [(t, n) for t, n in arrivals if t >= t_first + 300 * MS]
        # least-squares slope of cumulative bytes over read time: robust to a late read
        xs, ys, acc = [], [], 0
        for t, n in steady:
            acc += n
            xs.append((t - steady[0][0]) / NS)
            ys.append(acc)
        rate = statistics.linear_regression(xs, ys).slope if len(xs) > 2 else float("nan")
        err = (rate - expected) / expected * 100
        print(f"{baud:>8} {expected:>13.1f} {rate:>13.1f} {err:>8.3f}% {sum(n for _, n in arrivals):>8}")
        target(f"serial rate within 0.1 % at {baud} baud", abs(err) <= 0.1, f"{err:+.3f}%")


# --- 4. schedule edges ------------------------------------------------------------------


def bench_edges(quick: bool) -> None:
    print("\n== 4. schedule edges: link toggles every 100 ms under 10k datagrams/s, delay 2 ms")
    delay = 2 * MS
    edges = [(i * 100 * MS, i % 2 == 1) for i in range(1, 16)]  # down at 100, up at 200, ...
    rx = udp_socket()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pa, pb = free_udp_port(), free_udp_port()
    eng = EngineProc(
        f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
        f"udp://127.0.0.1:{pb}?peer=127.0.0.1:{rx.getsockname()[1]}",
        {"delay_ns": delay},
        [(t, not down) for t, down in edges],
    )
    got: list = []
    pad = b"\0" * 84
    wait = (eng.t0_mono - time.monotonic_ns()) / NS
    if wait > 0:
        time.sleep(wait)
    paced_send(
        lambda d: tx.sendto(d, ("127.0.0.1", pa)),
        10_000,
        1.7,
        lambda i: struct.pack("!Qq", i, time.time_ns()) + pad,
        poll=lambda: drain(rx, got, 64),
    )
    time.sleep(0.05)
    drain(rx, got)
    st = eng.stop()
    rx.close()
    tx.close()
    late = [(applied - intended) / 1000 for up, intended, applied in st["a->b"]["transitions"]]
    # Deliveries inside scripted-down spans: a unit sent before the down edge must
    # not arrive after it (cut in flight); nothing sent while down may arrive at all.
    bad = 0
    downs = [
        (eng.t0_real + t, eng.t0_real + edges[i + 1][0])
        for i, (t, down) in enumerate(edges)
        if down and i + 1 < len(edges)
    ]
    sent_at = sorted((struct.unpack_from("!Qq", data)[1], t) for t, data in got)
    arrivals = sorted(t for t, _ in got)
    tol = 200_000  # a datagram reaches the engine's socket within ~0.2 ms of sendto()
    for d0, d1 in downs:
        # A unit whose delivery time (send + delay) falls in the down span must be
        # cut; one sent while down must be dropped. Either arriving is a violation.
        bad += sum(1 for ts, _ in sent_at if d0 - delay + tol < ts < d1 - tol)
    print(
        f"  engine: gate applied late by (us) p50 {pct(late, 50):.1f}  max {max(late or [0]):.1f}  over {len(late)} edges"
    )
    print(f"  deliveries while scripted down: {bad}   (total delivered {len(arrivals)}, drops {st['a->b']['drops']})")
    target(
        "schedule edges within 1 ms",
        bool(late) and max(abs(x) for x in late) <= 1000,
        f"max {max(late or [0]):.1f} us late",
    )
    target("nothing delivered while scripted down", bad == 0, f"{bad} deliveries")


# --- 5. forwarding throughput -------------------------------------------------------------


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _in_ns(ns: str, fn):
    import threading

    box = {}

    def body():
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        ctypes.CDLL("libc.so.6", use_errno=True).setns(fd, 0x40000000)
        os.close(fd)
        box["v"] = fn()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return box["v"]


def _rx_packets(ns: str, ifname: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{ifname}/statistics/rx_packets"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


def bench_forwarding(quick: bool) -> None:
    print("\n== 5. most frames/s forwarded unimpaired over veth (eth endpoints), sender flat out for 2 s")
    if os.geteuid() != 0:
        print("  skipped: needs root for veth pairs and raw sockets")
        target(">= 50,000 frames/s of 1500 bytes", False, "not run (not root)")
        return
    p = f"h5b{uuid.uuid4().hex[:5]}"
    ns_a, ns_b = p + "na", p + "nb"
    try:
        for ns in (ns_a, ns_b):
            _ip("netns", "add", ns)
        _ip("link", "add", p + "ea", "type", "veth", "peer", "name", p + "ha")
        _ip("link", "add", p + "eb", "type", "veth", "peer", "name", p + "hb")
        _ip("link", "add", p + "da", "type", "veth", "peer", "name", p + "db")  # direct baseline pair
        _ip("link", "set", p + "ha", "netns", ns_a)
        _ip("link", "set", p + "da", "netns", ns_a)
        _ip("link", "set", p + "hb", "netns", ns_b)
        _ip("link", "set", p + "db", "netns", ns_b)
        for ns, ifs in ((ns_a, ("ha", "da")), (ns_b, ("hb", "db"))):
            for i in ifs:
                subprocess.run(
                    ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{p + i}.disable_ipv6=1"],
                    capture_output=True,
                )
                _ip("-n", ns, "link", "set", p + i, "up")
        for i in ("ea", "eb"):
            with open(f"/proc/sys/net/ipv6/conf/{p + i}/disable_ipv6", "w") as f:
                f.write("1")
            _ip("link", "set", p + i, "up")

        def sender(ifname):
            def make():
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((ifname, 0))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                return s

            return _in_ns(ns_a, make)

        print(f"{'frame':>7} {'path':>24} {'offered f/s':>12} {'delivered f/s':>14} {'Mbit/s':>8}")
        dur = 1.0 if quick else 2.0
        for size in (1500, 64):
            frame = bytes.fromhex("02bb0000000202aa00000001") + ETHERTYPE.to_bytes(2, "big") + b"f" * (size - 14)
            for path, ifname, rx_if in (
                ("baseline (direct veth)", p + "da", p + "db"),
                ("emulator", p + "ha", p + "hb"),
            ):
                eng = EngineProc(f"eth://{p}ea", f"eth://{p}eb", {}) if path == "emulator" else None
                s = sender(ifname)
                before = _rx_packets(ns_b, rx_if)
                sent = 0
                t0 = time.monotonic()
                end = t0 + dur
                send = s.send
                while time.monotonic() < end:
                    for _ in range(64):
                        try:
                            send(frame)
                            sent += 1
                        except OSError:
                            pass
                elapsed = time.monotonic() - t0
                time.sleep(0.1)
                got = _rx_packets(ns_b, rx_if) - before
                s.close()
                note = ""
                if eng:
                    st = eng.stop()["a->b"]
                    note = f"   engine in {st['units_in']} out {st['units_out']}"
                fps = got / elapsed
                print(f"{size:>7} {path:>24} {sent / elapsed:>12.0f} {fps:>14.0f} {fps * size * 8 / 1e6:>8.1f}{note}")
                if path == "emulator" and size == 1500:
                    target(
                        ">= 50,000 frames/s of 1500 bytes (600 Mbit/s)",
                        fps >= 50_000,
                        f"{fps:.0f} frames/s, {fps * 1500 * 8 / 1e6:.0f} Mbit/s",
                    )
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for i in ("ea", "eb"):
            subprocess.run(["ip", "link", "del", p + i], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--realtime", action="store_true", help="run the engine loop SCHED_FIFO (hilnet link --realtime)")
    args = ap.parse_args()
    EngineProc.realtime = args.realtime
    print(
        f"hilnet link accuracy benchmark: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Linux {platform.release()}, Python {platform.python_version()}, engine {'SCHED_FIFO' if args.realtime else 'normal priority'}, load {os.getloadavg()[0]:.2f}"
    )
    t = time.monotonic()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        bench_delay(args.quick)
        bench_rate(args.quick)
        bench_serial(args.quick, tmp)
        bench_edges(args.quick)
        bench_forwarding(args.quick)
    print(f"\n== targets ({time.monotonic() - t:.0f} s)")
    for name, ok, detail in RESULTS:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {detail}")


if __name__ == "__main__":
    sys.exit(main())
