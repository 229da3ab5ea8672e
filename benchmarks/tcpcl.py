"""TCPCLv4 single-hop throughput on loopback: TcpclCla -> TcpclCla, 1 MiB bundles.

Baseline, measured in the same run and the same event loop: a raw asyncio TCP
copy of the same bytes (write, drain; the reader only counts). Both ends of
both runs share one Python process, as two agents on one board would not, so
the figure is a floor. Target: >= 200 Mbit/s for 1 MiB bundles.

    python benchmarks/tcpcl.py [--bundles 200] [--size 1MiB] [--in-flight 1,4] [--segment 1MiB]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time

from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.units import format_size, parse_size


class CountingSink:
    def __init__(self):
        self.count = 0
        self.octets = 0

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        self.count += 1
        self.octets += len(data)

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        pass

    def tls_failed(self, cla, reason, peer, certified, address):
        pass


async def tcpcl_run(bundles: int, data: bytes, in_flight: int, segment: int) -> float:
    """Seconds to carry ``bundles`` copies of ``data``, ``in_flight`` sends at a time."""
    sink = CountingSink()
    rx = TcpclCla("ipn:1.0", listen=("127.0.0.1", 0), segment_mru=max(segment, 1 << 20))
    await rx.start(sink)
    tx = TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": rx.address}, max_segment=segment)
    await tx.start(CountingSink())
    while "ipn:1.0" not in tx.peers_up():
        await asyncio.sleep(0.005)
    sem = asyncio.Semaphore(in_flight)

    async def one():
        async with sem:
            await tx.send("ipn:1.0", data)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(bundles)))
    elapsed = time.perf_counter() - t0
    if sink.count != bundles or sink.octets != bundles * len(data):
        raise SystemExit(f"lost bundles: {sink.count}/{bundles}")
    await tx.stop()
    await rx.stop()
    return elapsed


async def raw_run(bundles: int, data: bytes) -> float:
    """Seconds for a raw asyncio TCP copy of the same octets (no framing, no acks)."""
    total = bundles * len(data)
    done = asyncio.Event()
    got = 0

    async def reader(r: asyncio.StreamReader, w: asyncio.StreamWriter):
        nonlocal got
        while chunk := await r.read(1 << 20):
            got += len(chunk)
            if got >= total:
                done.set()
        w.close()

    server = await asyncio.start_server(reader, "127.0.0.1", 0, limit=4 << 20)
    r, w = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    t0 = time.perf_counter()
    for _ in range(bundles):
        w.write(data)
        await w.drain()
    await done.wait()
    elapsed = time.perf_counter() - t0
    w.close()
    server.close()
    return elapsed


def mbit(octets: int, seconds: float) -> float:
    return octets * 8 / seconds / 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=200)
    ap.add_argument("--size", default="1MiB")
    ap.add_argument("--in-flight", default="1,4")
    ap.add_argument("--segment", default="1MiB", help="largest segment the sender writes")
    args = ap.parse_args()
    size = parse_size(args.size)
    segment = parse_size(args.segment)
    data = os.urandom(size)
    octets = args.bundles * size
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, {sys.platform}")
    print(f"{args.bundles} bundles of {format_size(size)}, segments <= {format_size(segment)}, loopback, one process")
    raw = await raw_run(args.bundles, data)
    print(f"  baseline raw asyncio TCP copy : {mbit(octets, raw):8.0f} Mbit/s")
    for n in (int(x) for x in args.in_flight.split(",")):
        t = await tcpcl_run(args.bundles, data, n, segment)
        print(
            f"  TcpclCla -> TcpclCla, {n} in flight: {mbit(octets, t):8.0f} Mbit/s"
            f"  ({t / args.bundles * 1e3:.2f} ms per bundle, {t / raw:.2f}x baseline time)"
        )
    print("  target: >= 200 Mbit/s")


if __name__ == "__main__":
    asyncio.run(main())
