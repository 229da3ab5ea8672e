"""How fast a rate the link engine keeps: the ceiling behind ``clock.compress: all``'s refusal.

Under ``compress: all`` a link's rate is multiplied by the scale, so a 2 Mbit/s
UHF link at scale 300 must run at 600 Mbit/s of wall time. ``hilnet.scenario.wall``
refuses rates above ``MAX_WALL_RATE_BPS``. This script offers 1400-byte UDP
datagrams at 1.1x a configured rate through the engine (in a child process, as
``hilnet link`` runs it) and prints the rate delivered against the rate set, beside
a baseline measured in the same run: the same sender and receiver without the
engine, flat out. Nothing asserts; it prints figures and the configuration.

    python benchmarks/compress_ceiling.py [--seconds 2] [--rates 100,300,600,1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time

from link_accuracy import MS, NS, EngineProc, drain, free_udp_port, paced_send, udp_socket

from hilnet.scenario.wall import MAX_WALL_RATE_BPS

SIZE = 1400
WIRE_BITS = (SIZE + 28) * 8  # the engine charges IPv4 and UDP headers on a udp endpoint


def _through(rate_bps: int | None, seconds: float) -> tuple[float, int, int]:
    """(delivered bit/s of wire over the steady part, datagrams sent, datagrams received)."""
    rx = udp_socket()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    eng = None
    if rate_bps is None:
        dest = rx.getsockname()
        offered = 1e9 / WIRE_BITS  # flat out, as far as one Python sender goes
    else:
        pa, pb = free_udp_port(), free_udp_port()
        eng = EngineProc(
            f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
            f"udp://127.0.0.1:{pb}?peer=127.0.0.1:{rx.getsockname()[1]}",
            {"rate_bps": rate_bps, "queue_bytes": 4 << 20},
        )
        dest = ("127.0.0.1", pa)
        offered = 1.1 * rate_bps / WIRE_BITS
    got: list = []
    pkt = b"c" * SIZE
    sent = paced_send(lambda d: tx.sendto(d, dest), offered, seconds, lambda i: pkt, poll=lambda: drain(rx, got, 256))
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        drain(rx, got)
    if eng is not None:
        eng.stop()
    rx.close()
    tx.close()
    times = sorted(t for t, _ in got)
    if len(times) < 3:
        return 0.0, sent, len(got)
    start = times[0] + 300 * MS  # the queue filling
    steady = [t for t in times if start <= t <= times[-1] - 100 * MS]
    span = (steady[-1] - steady[0]) / NS if len(steady) > 1 else 0
    return (len(steady) - 1) * WIRE_BITS / span if span else 0.0, sent, len(got)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="how long each rate is offered")
    ap.add_argument("--rates", default="100,300,600,1000", help="configured rates, Mbit/s")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}")
    print(
        f"{SIZE}-byte UDP datagrams on 127.0.0.1, {args.seconds:g} s per rate; refusal ceiling {MAX_WALL_RATE_BPS / 1e6:g} Mbit/s"
    )
    base, sent, rcvd = _through(None, args.seconds)
    print(f"\n{'path':>28} {'set Mbit/s':>11} {'delivered':>10} {'of set':>8} {'sent':>8} {'received':>9}")
    print(f"{'baseline (no engine)':>28} {'-':>11} {base / 1e6:>10.1f} {'-':>8} {sent:>8} {rcvd:>9}")
    for mbit in rates:
        got, sent, rcvd = _through(mbit * 1_000_000, args.seconds)
        share = got / (mbit * 1e6) * 100
        print(f"{'engine':>28} {mbit:>11} {got / 1e6:>10.1f} {share:>7.1f}% {sent:>8} {rcvd:>9}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
