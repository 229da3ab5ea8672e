"""TCPCLv4 single-hop throughput on loopback: TcpclCla -> TcpclCla, 1 MiB bundles.

Baseline, measured in the same run and the same event loop: a raw asyncio TCP
copy of the same bytes (write, drain; the reader only counts). Both ends of
both runs share one Python process, as two agents on one board would not, so
the figure is a floor. Target: >= 200 Mbit/s for 1 MiB bundles. Each row is
measured plain and over TLS 1.3 (`tls: require` on both ends, certificates of a
throwaway lab CA), so the cost of TLS is the difference of two rows of one run.

    python benchmarks/tcpcl.py [--bundles 200] [--size 1MiB] [--in-flight 1,4] [--segment 1MiB] [--no-tls]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time

from hilnet.agent import pki
from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.agent.cla.tcpcl_security import TlsPolicy
from hilnet.agent.cla.tcpcl_tls import TlsFiles
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


async def tcpcl_run(
    bundles: int, data: bytes, in_flight: int, segment: int, tls: dict[str, TlsFiles] | None = None
) -> float:
    """Seconds to carry ``bundles`` copies of ``data``, ``in_flight`` sends at a time (over TLS with ``tls``)."""
    sink = CountingSink()
    policy = TlsPolicy.REQUIRE if tls else TlsPolicy.OFF
    rx = TcpclCla(
        "ipn:1.0",
        listen=("127.0.0.1", 0),
        segment_mru=max(segment, 1 << 20),
        tls=policy,
        tls_files=tls["rx"] if tls else None,
    )
    await rx.start(sink)
    tx = TcpclCla(
        "ipn:2.0",
        listen=None,
        peers={"ipn:1.0": rx.address},
        max_segment=segment,
        tls=policy,
        tls_files=tls["tx"] if tls else None,
    )
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
    ap.add_argument("--no-tls", action="store_true", help="skip the TLS 1.3 rows")
    args = ap.parse_args()
    size = parse_size(args.size)
    segment = parse_size(args.segment)
    data = os.urandom(size)
    octets = args.bundles * size
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, {sys.platform}")
    print(f"{args.bundles} bundles of {format_size(size)}, segments <= {format_size(segment)}, loopback, one process")
    raw = await raw_run(args.bundles, data)
    print(f"  baseline raw asyncio TCP copy : {mbit(octets, raw):8.0f} Mbit/s")
    with tempfile.TemporaryDirectory() as lab:
        pki.init_ca(lab)
        files = {"rx": pki.issue(lab, "rx", "ipn:1.0"), "tx": pki.issue(lab, "tx", "ipn:2.0")}
        for n in (int(x) for x in args.in_flight.split(",")):
            for tls in (None,) if args.no_tls else (None, files):
                t = await tcpcl_run(args.bundles, data, n, segment, tls)
                print(
                    f"  TcpclCla -> TcpclCla, {n} in flight, {'TLS 1.3' if tls else 'plain  '}: "
                    f"{mbit(octets, t):8.0f} Mbit/s  ({t / args.bundles * 1e3:.2f} ms per bundle, "
                    f"{t / raw:.2f}x baseline time)"
                )
    print("  target: >= 200 Mbit/s")


if __name__ == "__main__":
    asyncio.run(main())
