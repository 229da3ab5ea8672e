"""End-to-end agent throughput: real ``hilnet agent --stdio`` processes, durable stores.

Three figures, each beside a baseline measured in the same run on this machine:

1. **Chain, 1 KiB bundles.** Agents a -> b -> c on 127.0.0.1, TCPCLv4, stores on
   disk with ``synchronous=FULL``. N bundles are injected at a (pipelined inject
   commands); the clock runs from the first inject until c has reported the last
   ``delivered`` event. Baseline: the store's raw group-commit puts/s
   (``BundleStore.put_async`` from 64 tasks, same payload size, same directory), the ceiling for any one
   agent, which puts every bundle once. Target >= 2,000 bundles/s.
2. **One hop, 1 MiB bundles.** a holds N bundles before b exists; b starts and
   the clock runs from b's ``session-up`` until b delivered the last one: store
   read at a, TCPCL transfer, decode and durable put at b, delivery, ack, delete
   at a. Baseline: two TcpclCla in one process, no store (benchmarks/tcpcl.py's
   core). Target >= 200 Mbit/s.
3. **Serial.** Agents a and b, serial CLA over a pty pair joined by the link
   emulator (hilnet.link.engine.Engine, DirectionConfig(baud=...)), one bundle
   per baud; goodput = payload bytes / seconds from ``forwarded`` to ``acked``
   as a fraction of the line rate (baud / 10, 8N1). Baseline: two SerialCla in
   one process over the same emulated link, no agents. Target >= 90 %.

All agents and the benchmark share the machine's cores, so figures are floors.

    python benchmarks/agent_chain.py [--bundles 5000] [--big 100] [--serial-size 100KiB]
                                     [--only chain,hop,serial] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

from hilnet.agent.protocol import Event, Inject, event_json, parse_command
from hilnet.agent.store import BundleStore
from hilnet.clock import MonotonicClock
from hilnet.stacks.agent_process import AgentProcess
from hilnet.units import format_size, parse_size

LIFETIME_NS = 3600 * 10**9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Collects events from every agent; waits for counts of one kind at one node."""

    def __init__(self):
        self.cond = threading.Condition()
        self.counts: dict[tuple[str, str], int] = {}
        self.first: dict[tuple[str, str], int] = {}  # (node, kind) -> agent t_ns of the first
        self.last: dict[tuple[str, str], int] = {}
        self.last_wall: dict[tuple[str, str], float] = {}
        self.problems: list[dict] = []

    def __call__(self, node: str, event: Event) -> None:
        kind = event.kind
        k = (node, kind)
        with self.cond:
            self.counts[k] = self.counts.get(k, 0) + 1
            t = event.t_ns
            self.first.setdefault(k, t)
            self.last[k] = t
            self.last_wall[k] = time.perf_counter()
            if kind in ("error", "refused", "rejected") or (kind == "log" and getattr(event, "level", "") == "error"):
                self.problems.append(event_json(event))
            self.cond.notify_all()

    def unreadable(self, node: str, message: str) -> None:
        with self.cond:
            self.problems.append({"event": "log", "level": "error", "message": message, "node": node})

    def wait(self, node: str, kind: str, n: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while self.counts.get((node, kind), 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


PROFILE_DIR: str | None = None  # --profile: run each agent under cProfile, one .prof per agent


def start_agent(name: str, tmp: str, rec: Recorder) -> AgentProcess:
    a = AgentProcess(name, (), os.path.join(tmp, f"{name}.log"), MonotonicClock(), rec, rec.unreadable)
    if PROFILE_DIR:
        os.makedirs(PROFILE_DIR, exist_ok=True)
        out = os.path.join(PROFILE_DIR, f"{os.path.basename(tmp)}-{name}.prof")
        a.argv = [sys.executable, "-m", "cProfile", "-o", out, *a.argv[1:]]
    a.start()
    a.wait_ready()
    return a


def configure(agent: AgentProcess, name: str, eid: str, tmp: str, clas: list, routes: dict) -> None:
    fields = {
        "cmd": "configure",
        "node": name,
        "eid": eid,
        "store": {"path": os.path.join(tmp, f"{name}.store")},
        "clas": clas,
        "routes": routes,
    }
    agent.call(parse_command(json.dumps(fields)))


def inject_many(agent: AgentProcess, n: int, dest: str, size: int) -> None:
    """Pipelined: write every inject, then collect the replies."""
    ids = [agent.send(Inject(dest=dest, size=size, seed=i, lifetime_ns=LIFETIME_NS)) for i in range(n)]
    for cid in ids:
        agent.wait_reply(cid, timeout_s=300)


def cpu_seconds(agent: AgentProcess) -> float:
    """User + system CPU the agent process has used so far (Linux /proc)."""
    try:
        with open(f"/proc/{agent.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def stop_all(agents: list[AgentProcess]) -> None:
    for a in agents:
        a.stop()


# -- 1. chain ---------------------------------------------------------------------


def chain(n: int, size: int, tmp: str) -> tuple[float, dict[str, float]]:
    rec = Recorder()
    pb, pc = free_port(), free_port()
    names = ("a", "b", "c")
    agents = [start_agent(x, tmp, rec) for x in names]
    try:
        a, b, c = agents
        configure(c, "c", "ipn:3.0", tmp, [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}], {})
        configure(
            b,
            "b",
            "ipn:2.0",
            tmp,
            [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}", "peers": {"ipn:3.0": f"127.0.0.1:{pc}"}}],
            {"*": "ipn:3.0"},
        )
        configure(
            a, "a", "ipn:1.0", tmp, [{"type": "tcpcl", "peers": {"ipn:2.0": f"127.0.0.1:{pb}"}}], {"*": "ipn:2.0"}
        )
        if not (rec.wait("a", "session-up", 1, 20) and rec.wait("c", "session-up", 1, 20)):
            raise SystemExit("chain: sessions did not come up")
        cpu0 = {x: cpu_seconds(p) for x, p in zip(names, agents)}
        t0 = time.perf_counter()
        inject_many(a, n, "ipn:3.0", size)
        if not rec.wait("c", "delivered", n, 600):
            raise SystemExit(f"chain: only {rec.counts.get(('c', 'delivered'), 0)} of {n} delivered")
        elapsed = rec.last_wall[("c", "delivered")] - t0
        return elapsed, {x: cpu_seconds(p) - cpu0[x] for x, p in zip(names, agents)}
    finally:
        stop_all(agents)


def store_baseline(n: int, size: int, tmp: str) -> float:
    """Durable puts/s of the store's group commit with 64 writers, as an agent's receive path has."""
    path = os.path.join(tmp, "baseline.store")
    payload = os.urandom(size)
    with BundleStore(path) as store:

        async def run() -> float:
            t0 = time.perf_counter()
            sem = asyncio.Semaphore(64)

            async def one(i: int) -> None:
                async with sem:
                    await store.put_async(
                        f"k{i}", payload, source="ipn:1.0", destination="ipn:3.0", priority=1, expires_at_ns=10**18
                    )

            await asyncio.gather(*(one(i) for i in range(n)))
            return n / (time.perf_counter() - t0)

        rate = asyncio.run(run())
    os.unlink(path)
    return rate


# -- 2. one hop, big bundles ----------------------------------------------------------


def hop(n: int, size: int, tmp: str) -> tuple[float, Recorder]:
    rec = Recorder()
    pb = free_port()
    a = start_agent("a", tmp, rec)
    agents = [a]
    try:
        configure(
            a, "a", "ipn:1.0", tmp, [{"type": "tcpcl", "peers": {"ipn:2.0": f"127.0.0.1:{pb}"}}], {"*": "ipn:2.0"}
        )
        inject_many(a, n, "ipn:2.0", size)
        b = start_agent("b", tmp, rec)
        agents.append(b)
        configure(b, "b", "ipn:2.0", tmp, [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}"}], {})
        if not rec.wait("b", "delivered", n, 600):
            raise SystemExit(f"hop: only {rec.counts.get(('b', 'delivered'), 0)} of {n} delivered")
        # One clock: both agents stamp events with the host's CLOCK_MONOTONIC.
        elapsed = (rec.last[("b", "delivered")] - rec.first[("b", "session-up")]) / 1e9
        return elapsed, rec
    finally:
        stop_all(agents)


def tcpcl_baseline(n: int, size: int) -> float:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tcpcl import tcpcl_run  # benchmarks/tcpcl.py

    return asyncio.run(tcpcl_run(n, os.urandom(size), 4, 1 << 20))


# -- 3. serial --------------------------------------------------------------------------


def serial_agents(baud: int, size: int, tmp: str) -> float:
    """Seconds from ``forwarded`` to ``acked`` of one bundle between two agents over a pty link."""
    from hilnet.link.engine import Engine
    from hilnet.link.shaper import DirectionConfig

    d = tempfile.mkdtemp(dir=tmp)
    engine = Engine()
    engine.add_link("uart", f"pty://{d}/a", f"pty://{d}/b", ab=DirectionConfig(baud=baud))
    engine.start()
    rec = Recorder()
    agents = []
    try:
        a, b = start_agent("a", d, rec), start_agent("b", d, rec)
        agents = [a, b]
        configure(b, "b", "ipn:2.0", d, [{"type": "serial", "port": f"{d}/b", "baud": baud, "peer": "ipn:1.0"}], {})
        configure(
            a,
            "a",
            "ipn:1.0",
            d,
            [{"type": "serial", "port": f"{d}/a", "baud": baud, "peer": "ipn:2.0"}],
            {"*": "ipn:2.0"},
        )
        if not rec.wait("a", "session-up", 1, 30):
            raise SystemExit(f"serial {baud}: session did not come up")
        a.call(Inject(dest="ipn:2.0", size=size, seed=1, lifetime_ns=LIFETIME_NS))
        if not rec.wait("a", "acked", 1, 600):
            raise SystemExit(f"serial {baud}: not acknowledged")
        return (rec.last[("a", "acked")] - rec.first[("a", "forwarded")]) / 1e9
    finally:
        stop_all(agents)
        engine.stop()
        engine.join(5)
        engine.close()


def serial_baseline(baud: int, size: int) -> float:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from serial_cla import run_emulated  # benchmarks/serial_cla.py

    frac, _ = run_emulated(baud, 0, random.Random(1).randbytes(size))
    return frac


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundles", type=int, default=5000, help="1 KiB bundles through the chain")
    p.add_argument("--size", default="1KiB")
    p.add_argument("--big", type=int, default=100, help="1 MiB bundles over one hop")
    p.add_argument("--big-size", default="1MiB")
    p.add_argument("--serial-size", default="100KiB")
    p.add_argument("--only", default="chain,hop,serial")
    p.add_argument("--dir", default=None, help="where the stores go [default: a temporary directory]")
    p.add_argument("--profile", default=None, metavar="DIR", help="write a cProfile of each agent into DIR")
    args = p.parse_args()
    global PROFILE_DIR
    PROFILE_DIR = args.profile and os.path.abspath(args.profile)
    only = set(args.only.split(","))
    size, big = parse_size(args.size), parse_size(args.big_size)
    tmp = tempfile.mkdtemp(prefix="hilnet-bench-", dir=args.dir)
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
        f"{sys.platform}; stores in {tmp} (synchronous=FULL)"
    )
    try:
        if "chain" in only:
            base = store_baseline(args.bundles, size, tmp)
            elapsed, cpu = chain(args.bundles, size, os.path.join(tmp, "chain"))
            print(f"chain a->b->c, TCPCLv4 on loopback, {args.bundles} x {format_size(size)}:")
            print(f"  baseline group commit durable puts   : {base:8.0f} puts/s")
            print(
                f"  agents end to end                    : {args.bundles / elapsed:8.0f} bundles/s"
                f"  ({elapsed:.2f} s)   target >= 2000"
            )
            print(
                "  agent CPU per bundle                 : "
                + ", ".join(f"{x} {cpu[x] / args.bundles * 1e6:.0f} us" for x in cpu)
            )
        if "hop" in only:
            base_s = tcpcl_baseline(args.big, big)
            elapsed, _ = hop(args.big, big, os.path.join(tmp, "hop"))
            mbit = args.big * big * 8 / 1e6
            print(f"one hop a->b, TCPCLv4 on loopback, {args.big} x {format_size(big)}:")
            print(f"  baseline TcpclCla->TcpclCla, no store : {mbit / base_s:8.0f} Mbit/s")
            print(
                f"  agents, durable store at both ends    : {mbit / elapsed:8.0f} Mbit/s"
                f"  ({elapsed:.2f} s)   target >= 200"
            )
        if "serial" in only:
            ssize = parse_size(args.serial_size)
            print(f"serial a->b over the link emulator's pty pair, one {format_size(ssize)} bundle, 8N1:")
            for baud in (115200, 921600):
                base = serial_baseline(baud, ssize)
                seconds = serial_agents(baud, ssize, tmp)
                frac = ssize / seconds / (baud / 10)
                print(
                    f"  {baud:>7} baud: baseline SerialCla pair {base:6.1%}   agents {frac:6.1%} of line rate"
                    f"  ({seconds:.2f} s)   target >= 90%"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
