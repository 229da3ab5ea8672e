"""Durable puts/s of the bundle store, single and with group commit, and recovery time.

    python benchmarks/store.py [--dir DIR] [--payload BYTES] [--puts N] [--recovery-bundles N]

Baseline, measured in the same run on the same directory: raw appends of the same
records to a plain file, fsync'd one by one and in groups. The store cannot beat
the grouped baseline (it writes each payload twice: WAL, then checkpoint), so the
ratio to it is the store's overhead. Recovery is the time an agent restarting
after ``kill -9`` waits before it can route: open + quick integrity check + listing
every bundle. Figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import PutRequest

TARGET_GROUP_PUTS_PER_S = 5_000
COLS = {"source": "ipn:1.0", "destination": "ipn:4.0", "priority": 1, "expires_at_ns": 10**18}


def raw_appends(path: str, payload: bytes, n: int, group: int) -> float:
    """Records/s of write + fsync every ``group`` records to a plain file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            os.write(fd, len(payload).to_bytes(4, "big") + payload)
            if (i + 1) % group == 0:
                os.fsync(fd)
        os.fsync(fd)
        return n / (time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)


def store_single(path: str, payload: bytes, n: int, synchronous: str) -> float:
    with BundleStore(path, synchronous=synchronous) as s:
        t0 = time.perf_counter()
        for i in range(n):
            s.put(f"k{i}", payload, **COLS)
        return n / (time.perf_counter() - t0)


def store_many(path: str, payload: bytes, n: int, batch: int) -> float:
    with BundleStore(path) as s:
        t0 = time.perf_counter()
        for first in range(0, n, batch):
            s.put_many([PutRequest(f"k{i}", payload, **COLS) for i in range(first, min(n, first + batch))])
        return n / (time.perf_counter() - t0)


def store_group_threads(path: str, payload: bytes, n: int, threads: int) -> tuple[float, float]:
    """(puts/s, mean batch) with ``threads`` threads each doing blocking durable puts."""
    with BundleStore(path) as s:

        def worker(w: int) -> None:
            for i in range(w, n, threads):
                s.put(f"k{i}", payload, **COLS)

        ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return n / (time.perf_counter() - t0), n / s.commits


def store_group_asyncio(path: str, payload: bytes, n: int, tasks: int) -> tuple[float, float]:
    """(puts/s, mean batch) with ``tasks`` asyncio tasks each awaiting durable puts."""

    async def main(s: BundleStore) -> None:
        async def task(w: int) -> None:
            for i in range(w, n, tasks):
                await s.put_async(f"k{i}", payload, **COLS)

        await asyncio.gather(*(task(w) for w in range(tasks)))

    with BundleStore(path) as s:
        t0 = time.perf_counter()
        asyncio.run(main(s))
        return n / (time.perf_counter() - t0), n / s.commits


def recovery(path: str, payload_size: int, n: int) -> dict[str, float]:
    pid = os.fork()
    if pid == 0:  # the child fills the store and dies without closing it, as under kill -9,
        try:  # leaving a WAL that the next open must recover
            s = BundleStore(path)
            for first in range(0, n, 1_000):
                s.put_many(
                    [
                        PutRequest(
                            f"ipn:1.0-{i}-0",
                            os.urandom(payload_size),
                            **{
                                **COLS,
                                "destination": f"ipn:{2 + i % 5}.0",
                                "priority": i % 3,
                                "expires_at_ns": 10**18 + i,
                            },
                        )
                        for i in range(first, min(n, first + 1_000))
                    ]
                )
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    wal = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
    t = {"wal_bytes": wal}
    t0 = time.perf_counter()
    s = BundleStore(path)
    t["open"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    s.check()
    t["check"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    listed = s.list(order="priority")
    t["list"] = time.perf_counter() - t1
    t["total"] = time.perf_counter() - t0
    if len(listed) != n:
        raise SystemExit(f"recovery listed {len(listed)} bundles, expected {n}")
    t1 = time.perf_counter()
    s.check(deep=True)
    t["deep"] = time.perf_counter() - t1
    s.close()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="directory on the disk to measure (default: temp)")
    ap.add_argument("--payload", type=int, default=1024, help="bytes per bundle (default 1024)")
    ap.add_argument("--puts", type=int, default=5_000, help="puts per grouped measurement")
    ap.add_argument("--single-puts", type=int, default=1_000, help="puts per single measurement")
    ap.add_argument("--recovery-bundles", type=int, default=100_000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hilnet-store-bench-", dir=args.dir)
    payload = os.urandom(args.payload)
    fresh = iter(range(1_000_000))

    def db() -> str:
        return os.path.join(work, f"s{next(fresh)}.db")

    print(
        f"hilnet store benchmark: Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {platform.machine()} {platform.system()} "
        f"{platform.release()}, {os.cpu_count()} CPUs"
    )
    print(f"directory {work}; payload {args.payload} B; {args.single_puts} single puts, {args.puts} grouped puts")
    try:
        rows = [
            ("baseline: plain file, fsync per record", raw_appends(db(), payload, args.single_puts, 1), None),
            ("baseline: plain file, fsync per 64 records", raw_appends(db(), payload, args.puts, 64), None),
            ("store put, synchronous=FULL (durable)", store_single(db(), payload, args.single_puts, "FULL"), None),
            (
                "store put, synchronous=NORMAL (not power-safe)",
                store_single(db(), payload, args.single_puts, "NORMAL"),
                None,
            ),
            ("store put_many, 64 per commit", store_many(db(), payload, args.puts, 64), 64),
            ("store put_many, 512 per commit", store_many(db(), payload, args.puts, 512), 512),
            ("group commit, 8 threads", *store_group_threads(db(), payload, args.puts, 8)),
            ("group commit, 64 threads", *store_group_threads(db(), payload, args.puts, 64)),
            ("group commit, 256 asyncio tasks (put_async)", *store_group_asyncio(db(), payload, args.puts, 256)),
        ]
        base = rows[0][1]
        print(f"\n{'durable puts':<48}{'puts/s':>10}{'x baseline':>13}{'batch':>8}")
        for name, rate, batch in rows:
            b = "" if batch is None else f"{batch:.1f}"
            print(f"{name:<48}{rate:>10,.0f}{rate / base:>13.2f}{b:>8}")
        best_group = max(r for n, r, _ in rows if n.startswith("group commit"))
        verdict = "met" if best_group >= TARGET_GROUP_PUTS_PER_S else "NOT met"
        print(
            f"target >= {TARGET_GROUP_PUTS_PER_S:,} durable puts/s with group commit "
            f"(concurrent callers): {best_group:,.0f} -> {verdict}"
        )

        n = args.recovery_bundles
        t = recovery(db(), args.payload, n)
        print(
            f"\nrecovery of {n:,} bundles of {args.payload} B: open {t['open'] * 1e3:.0f} ms"
            f" + quick check {t['check'] * 1e3:.0f} ms + list {t['list'] * 1e3:.0f} ms"
            f" = {t['total']:.2f} s; deep check (integrity_check + SHA-256 of every payload)"
            f" {t['deep']:.2f} s; WAL left by the killed writer {t['wal_bytes'] / 2**20:.1f} MiB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
