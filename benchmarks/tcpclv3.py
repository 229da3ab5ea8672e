"""TCPCLv3 single-hop throughput on loopback: TcpclV3Cla -> TcpclV3Cla, 1 MiB bundles.

Baselines, measured in the same run and the same event loop: a raw asyncio TCP
copy of the same octets, and TCPCLv4 (TcpclCla -> TcpclCla, plain) with the same
bundles and segment size (benchmarks/tcpcl.py). Both ends share one Python
process, so the figures are a floor. TCPCLv3 should carry what TCPCLv4 carries:
its framing is smaller (SDNV lengths, no transfer ids), and each bundle's last ack
waits for the receiver's commit as in version 4.

    python benchmarks/tcpclv3.py [--bundles 200] [--size 1MiB] [--in-flight 1,4] [--segment 1MiB]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time

from tcpcl import CountingSink, mbit, raw_run, tcpcl_run

from hilnet.agent.cla.tcpclv3 import TcpclV3Cla
from hilnet.units import format_size, parse_size


async def tcpclv3_run(bundles: int, data: bytes, in_flight: int, segment: int) -> float:
    """Seconds to carry ``bundles`` copies of ``data`` over TCPCLv3, ``in_flight`` sends at a time."""
    sink = CountingSink()
    rx = TcpclV3Cla("ipn:1.0", listen=("127.0.0.1", 0))
    await rx.start(sink)
    tx = TcpclV3Cla("ipn:2.0", listen=None, peers={"ipn:1.0": rx.address}, max_segment=segment)
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


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=200)
    ap.add_argument("--size", default="1MiB")
    ap.add_argument("--in-flight", default="1,4")
    ap.add_argument("--segment", default="1MiB", help="largest segment the sender writes")
    args = ap.parse_args()
    size, segment = parse_size(args.size), parse_size(args.segment)
    data = os.urandom(size)
    octets = args.bundles * size
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, {sys.platform}")
    print(f"{args.bundles} bundles of {format_size(size)}, segments <= {format_size(segment)}, loopback, one process")
    raw = await raw_run(args.bundles, data)
    print(f"  baseline raw asyncio TCP copy   : {mbit(octets, raw):8.0f} Mbit/s")
    for n in (int(x) for x in args.in_flight.split(",")):
        v4 = await tcpcl_run(args.bundles, data, n, segment)
        v3 = await tcpclv3_run(args.bundles, data, n, segment)
        print(f"  baseline TCPCLv4, {n} in flight    : {mbit(octets, v4):8.0f} Mbit/s")
        print(
            f"  TcpclV3Cla -> TcpclV3Cla, {n} in flight: {mbit(octets, v3):8.0f} Mbit/s  "
            f"({v3 / args.bundles * 1e3:.2f} ms per bundle, {v3 / v4:.2f}x TCPCLv4's time, {v3 / raw:.2f}x raw)"
        )


if __name__ == "__main__":
    asyncio.run(main())
