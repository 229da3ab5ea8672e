"""Hostile TCPCLv4 and MTCP clients for benchmarks/soak.py: each kind a loop of bounded rate.

Run in their own process (:func:`run_hostiles`) so that they do not share the
benchmark's interpreter with the event readers that time the real traffic.
Every loop reconnects once the agent closes its connection, after a pause, so
the pressure is steady and bounded by the concurrency the configuration gives.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from collections import Counter
from dataclasses import asdict, dataclass

from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.mtcp import mtcp_head
from hilnet.agent.cla.tcpcl_messages import SegmentFlag, SessInit

MiB = 1 << 20


@dataclass(frozen=True)
class Attack:
    """How many clients of each kind run at once against one agent."""

    slowloris: int = 40  # a Contact Header one octet per second, never finished
    idle_tcpcl: int = 150  # connect and say nothing
    idle_mtcp: int = 200
    partial: int = 6  # a session whose transfer sends 32 MiB and never ends
    partial_mib: int = 32
    mutated: int = 8  # a valid session, then segments and acks with flipped octets
    oversize: int = 4  # segment lengths near 2^62, Transfer Length 2^60, MTCP heads of 1 TiB
    mtcp_junk: int = 4  # random octets on MTCP
    pause_s: float = 0.5  # between one connection of a client and its next

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in asdict(self).items())


def _handshake(node: str) -> bytes:
    return w.encode_contact_header() + w.encode_sess_init(SessInit(0, 16 * MiB, 1 << 40, node))


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except (OSError, TimeoutError):
        return None


async def _until_closed(reader: asyncio.StreamReader, timeout_s: float | None = None) -> None:
    """Read (and drop) what the agent says until it closes the connection."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout_s):
            pass
    except (OSError, TimeoutError):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (OSError, TimeoutError):
        pass


async def _slowloris(host: str, port: int, stats: Counter[str]) -> None:
    conn = await _open(host, port)
    if conn is None:
        return
    reader, writer = conn
    read = asyncio.ensure_future(_until_closed(reader))
    for octet in w.encode_contact_header()[:5]:
        if read.done():
            break
        writer.write(bytes((octet,)))
        await asyncio.sleep(1.0)
    await read
    stats["slowloris_closed"] += 1
    await _close(writer)


async def _idle(host: str, port: int, stats: Counter[str], kind: str) -> None:
    conn = await _open(host, port)
    if conn is None:
        stats[f"{kind}_connect_failed"] += 1
        return
    reader, writer = conn
    await _until_closed(reader)
    stats[f"{kind}_closed"] += 1
    await _close(writer)


async def _partial(host: str, port: int, stats: Counter[str], mib: int) -> None:
    conn = await _open(host, port)
    if conn is None:
        return
    reader, writer = conn
    read = asyncio.ensure_future(_until_closed(reader))
    try:
        writer.write(_handshake("ipn:666.0"))
        chunk = b"\xaa" * (4 * MiB)
        ext = w.encode_transfer_length(2 * mib * MiB)  # within the transfer MRU: it would be accepted
        writer.write(w.encode_segment_header(SegmentFlag.START, 0, len(chunk), ext) + chunk)
        for _ in range(mib // 4 - 1):
            writer.write(w.encode_segment_header(SegmentFlag.NONE, 0, len(chunk)) + chunk)
            await writer.drain()
        stats["partial_sent_mib"] += mib
    except OSError:
        pass
    await read  # and never send the END: the agent's partial timeout ends it
    stats["partial_closed"] += 1
    await _close(writer)


def _mutant(rng: random.Random) -> bytes:
    tid = rng.randrange(1 << 16)
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    msgs = [
        w.encode_segment_header(SegmentFlag.START | SegmentFlag.END, tid, len(body)) + body,
        w.encode_xfer_ack(SegmentFlag.END, tid, rng.randrange(1 << 20)),
        w.encode_segment_header(SegmentFlag.NONE, tid, len(body)) + body,
    ]
    data = bytearray(rng.choice(msgs))
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


async def _mutated(host: str, port: int, stats: Counter[str], rng: random.Random) -> None:
    conn = await _open(host, port)
    if conn is None:
        return
    reader, writer = conn
    try:
        writer.write(_handshake("ipn:667.0") + b"".join(_mutant(rng) for _ in range(rng.randrange(1, 20))))
        await writer.drain()
    except OSError:
        pass
    await _until_closed(reader, timeout_s=3)
    stats["mutated_sessions"] += 1
    await _close(writer)


async def _oversize(host: str, port: int, mtcp_port: int, stats: Counter[str], rng: random.Random) -> None:
    which = rng.randrange(3)
    conn = await _open(host, mtcp_port if which == 2 else port)
    if conn is None:
        return
    reader, writer = conn
    if which == 0:
        msg = _handshake("ipn:668.0") + w.encode_segment_header(SegmentFlag.START, 0, 1 << 62)
    elif which == 1:
        ext = w.encode_transfer_length(1 << 60)
        msg = _handshake("ipn:668.0") + w.encode_segment_header(SegmentFlag.START, 0, 16, ext) + b"o" * 16
    else:
        msg = b"\x5b" + struct.pack("!Q", 1 << 40) + b"o" * 64
    try:
        writer.write(msg)
        await writer.drain()
    except OSError:
        pass
    await _until_closed(reader, timeout_s=3)
    stats["oversize_tries"] += 1
    await _close(writer)


async def _mtcp_junk(host: str, port: int, stats: Counter[str], rng: random.Random) -> None:
    conn = await _open(host, port)
    if conn is None:
        return
    reader, writer = conn
    junk = mtcp_head(10) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
    try:
        writer.write(junk if rng.random() < 0.5 else junk[len(mtcp_head(10)) :])
        await writer.drain()
    except OSError:
        pass
    await _until_closed(reader, timeout_s=3)
    stats["mtcp_junk_tries"] += 1
    await _close(writer)


async def _forever(make, pause_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await make()
        except Exception:  # a hostile client's own trouble must not end the attack
            pass
        await asyncio.sleep(pause_s)


async def attack(host: str, tcpcl_port: int, mtcp_port: int, cfg: Attack, stop: asyncio.Event) -> Counter[str]:
    """Run every hostile kind until ``stop`` is set; returns what they did."""
    stats: Counter[str] = Counter()
    rng = random.Random(7)
    kinds = [
        (cfg.slowloris, lambda: _slowloris(host, tcpcl_port, stats)),
        (cfg.idle_tcpcl, lambda: _idle(host, tcpcl_port, stats, "idle_tcpcl")),
        (cfg.idle_mtcp, lambda: _idle(host, mtcp_port, stats, "idle_mtcp")),
        (cfg.partial, lambda: _partial(host, tcpcl_port, stats, cfg.partial_mib)),
        (cfg.mutated, lambda: _mutated(host, tcpcl_port, stats, rng)),
        (cfg.oversize, lambda: _oversize(host, tcpcl_port, mtcp_port, stats, rng)),
        (cfg.mtcp_junk, lambda: _mtcp_junk(host, mtcp_port, stats, rng)),
    ]
    tasks = [asyncio.create_task(_forever(make, cfg.pause_s, stop)) for n, make in kinds for _ in range(n)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def run_hostiles(host: str, tcpcl_port: int, mtcp_port: int, cfg: Attack, stop_flag, out) -> None:
    """Process entry: attack until ``stop_flag`` (a multiprocessing Event) is set; put the stats on ``out``.

    At the lowest CPU priority: an attacker brings its own machine, so what the
    clients themselves cost should not come out of the agents' share of the cores.
    """
    os.nice(19)

    async def main() -> Counter[str]:
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop_flag.is_set():
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        stats = await attack(host, tcpcl_port, mtcp_port, cfg, stop)
        await watcher
        return stats

    out.put(dict(asyncio.run(main())))
