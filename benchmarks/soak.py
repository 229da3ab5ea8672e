"""Soak: an agent relaying real traffic while hostile clients attack it; local only, bounded.

Agents a -> b -> c on 127.0.0.1 (TCPCLv4, durable stores). Real traffic: a
closed loop keeps ``--window`` bundles of ``--size`` bytes in flight from a to
c, each with a known payload (``payload_for(seed, size)``) whose SHA-256 c must
report. b, the relay, also listens on MTCP and is the target: hostile clients
(benchmarks/hostile.py, in their own process) open slow-loris contact headers,
idle connection floods on TCPCL and MTCP, partial transfers that never end,
mutated TCPCL segments, oversize length declarations and MTCP junk.

The run has two phases: first the real traffic alone (the baseline, measured
here and now), then the same traffic under attack. It prints the
configuration, the real traffic's rate in each phase and their ratio (target
>= 80 %), whether the real traffic lost nothing (every injected bundle
delivered once, intact), and b's peak RSS and descriptors (from /proc).
Exit status 1 only when real traffic was lost or corrupted, never on time.

    nice python benchmarks/soak.py [--duration 600] [--size 16KiB] [--window 32] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile import Attack, run_hostiles  # noqa: E402  (a sibling script)

from hilnet.agent.payload import payload_sha256  # noqa: E402
from hilnet.agent.protocol import Event, Inject, parse_command  # noqa: E402
from hilnet.clock import MonotonicClock  # noqa: E402
from hilnet.stacks.agent_process import AgentProcess  # noqa: E402
from hilnet.units import format_size, parse_size  # noqa: E402

LIFETIME_NS = 3600 * 10**9
LIMITS = {"memory_bytes": 64 << 20, "max_connections": 400}  # b's limits: low enough that the attack meets them


class Traffic:
    """The closed loop of real bundles: inject at a, count deliveries at c, check each payload's hash."""

    def __init__(self, size: int, window: int):
        self.size = size
        self.window = window
        self.cond = threading.Condition()
        self.injected: set[int] = set()
        self.delivered: dict[int, int] = {}  # seed -> times delivered
        self.corrupt: list[str] = []  # bundles delivered with a payload nobody sent
        self.limit_events: dict[str, int] = {}
        self.problems: list[dict] = []
        self.by_hash: dict[str, int] = {}  # payload sha256 -> seed, as bundles are injected

    def on_event(self, node: str, event: Event) -> None:
        kind = event.kind
        with self.cond:
            if kind == "delivered" and node == "c":
                seed = self.by_hash.get(getattr(event, "sha256", ""))  # payloads differ, so the hash names it
                if seed is None:
                    self.corrupt.append(getattr(event, "bundle", "?"))
                else:
                    self.delivered[seed] = self.delivered.get(seed, 0) + 1
                self.cond.notify_all()
            elif kind == "limit":
                key = f"{node}:{event.limit}"  # type: ignore[attr-defined]
                self.limit_events[key] = self.limit_events.get(key, 0) + 1 + event.suppressed  # type: ignore[attr-defined]
            elif kind == "error":
                self.problems.append({"node": node, "reason": getattr(event, "reason", "")})

    def unreadable(self, node: str, message: str) -> None:
        with self.cond:
            self.problems.append({"node": node, "reason": message})

    def outstanding(self) -> int:
        return len(self.injected) - len(self.delivered)

    def run(self, a: AgentProcess, until: float) -> tuple[int, float]:
        """Keep the window full until ``until`` (perf_counter); returns (bundles delivered, seconds)."""
        t0 = time.perf_counter()
        with self.cond:
            done0 = len(self.delivered)
        while time.perf_counter() < until:
            with self.cond:
                while self.outstanding() >= self.window and time.perf_counter() < until:
                    self.cond.wait(0.1)
                room = self.window - self.outstanding()
            for _ in range(max(0, room)):
                seed = len(self.injected)
                with self.cond:
                    self.by_hash[payload_sha256(seed, self.size)] = seed
                    self.injected.add(seed)
                a.send(Inject(dest="ipn:3.0", size=self.size, seed=seed, lifetime_ns=LIFETIME_NS))
        with self.cond:
            return len(self.delivered) - done0, time.perf_counter() - t0

    def drain(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while self.outstanding() > 0 and time.monotonic() < deadline:
                self.cond.wait(0.5)
            return self.outstanding() == 0


class Watch(threading.Thread):
    """Samples a process's RSS and open descriptors from /proc; keeps the peaks."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kb = 0
        self.peak_fds = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                self.peak_fds = max(self.peak_fds, len(os.listdir(f"/proc/{self.pid}/fd")))
            except (OSError, ValueError):
                return


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, tmp: str, traffic: Traffic, fields: dict) -> AgentProcess:
    agent = AgentProcess(
        name, (), os.path.join(tmp, f"{name}.log"), MonotonicClock(), traffic.on_event, traffic.unreadable
    )
    agent.start()
    agent.wait_ready()
    cmd = {"cmd": "configure", "node": name, "store": {"path": os.path.join(tmp, f"{name}.store")}} | fields
    agent.call(parse_command(json.dumps(cmd)))
    return agent


def chain(tmp: str, traffic: Traffic) -> tuple[list[AgentProcess], int, int]:
    """a -> b -> c; returns the agents and b's TCPCL and MTCP ports."""
    pb, pm, pc = free_port(), free_port(), free_port()
    c = start("c", tmp, traffic, {"eid": "ipn:3.0", "clas": [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}]})
    b_clas = [
        {"type": "tcpcl", "listen": f"127.0.0.1:{pb}", "peers": {"ipn:3.0": f"127.0.0.1:{pc}"}},
        {"type": "mtcp", "listen": f"127.0.0.1:{pm}"},
    ]
    b = start("b", tmp, traffic, {"eid": "ipn:2.0", "clas": b_clas, "routes": {"*": "ipn:3.0"}, "limits": LIMITS})
    a_clas = [{"type": "tcpcl", "peers": {"ipn:2.0": f"127.0.0.1:{pb}"}}]
    a = start("a", tmp, traffic, {"eid": "ipn:1.0", "clas": a_clas, "routes": {"*": "ipn:2.0"}})
    return [a, b, c], pb, pm


def soak(duration_s: float, size: int, window: int, tmp: str, attack_cfg: Attack) -> int:
    traffic = Traffic(size, window)
    agents, pb, pm = chain(tmp, traffic)
    a, b, _ = agents
    watch = Watch(b.proc.pid)  # type: ignore[union-attr]
    watch.start()
    base_s = max(3.0, duration_s * 0.2)
    try:
        time.sleep(1.0)  # sessions up
        traffic.run(a, time.perf_counter() + 2.0)  # warm-up: caches, first store pages
        base_n, base_t = traffic.run(a, time.perf_counter() + base_s)
        stop, out = multiprocessing.Event(), multiprocessing.Queue()
        hostiles = multiprocessing.Process(target=run_hostiles, args=("127.0.0.1", pb, pm, attack_cfg, stop, out))
        hostiles.start()
        warm = min(10.0, (duration_s - base_s) * 0.1)
        traffic.run(a, time.perf_counter() + warm)
        hot_n, hot_t = traffic.run(a, time.perf_counter() + duration_s - base_s - warm)
        stop.set()
        attack_stats = out.get(timeout=60)
        hostiles.join(30)
        drained = traffic.drain(120)
        status = b.call(parse_command('{"cmd":"status"}'))
    finally:
        watch.stop.set()
        for agent in agents:
            agent.stop()
    return report(traffic, attack_cfg, (base_n, base_t), (hot_n, hot_t), drained, attack_stats, status, watch)


def report(traffic: Traffic, cfg: Attack, base, hot, drained: bool, attack_stats, status, watch: Watch) -> int:
    base_rate, hot_rate = base[0] / base[1], hot[0] / hot[1]
    size = traffic.size
    print(
        f"  unloaded:     {base_rate:8.1f} bundles/s  {base_rate * size * 8 / 1e6:7.2f} Mbit/s  ({base[0]} in {base[1]:.1f} s)"
    )
    print(
        f"  under attack: {hot_rate:8.1f} bundles/s  {hot_rate * size * 8 / 1e6:7.2f} Mbit/s  ({hot[0]} in {hot[1]:.1f} s)"
    )
    print(f"  ratio:        {100 * hot_rate / base_rate:.0f} %  (target >= 80 %)")
    dupes = sorted(s for s, n in traffic.delivered.items() if n > 1)
    missing = sorted(traffic.injected - set(traffic.delivered))
    lost_nothing = drained and not missing and not dupes and not traffic.corrupt
    print(
        f"  real traffic: {len(traffic.injected)} injected, {len(traffic.delivered)} delivered, "
        f"{len(missing)} missing, {len(dupes)} duplicated, {len(traffic.corrupt)} corrupt -> "
        f"lost nothing: {'yes' if lost_nothing else 'NO'}"
    )
    print(f"  b peak RSS:   {watch.peak_rss_kb / 1024:.1f} MiB;  peak descriptors: {watch.peak_fds}")
    print(f"  b limits:     {json.dumps(status.get('limits', {}))}")
    print(f"  limit hits in events: {json.dumps(traffic.limit_events)}")
    print(f"  attack did:   {json.dumps(attack_stats)}")
    counters = {k: v for k, v in status.get("counters", {}).items() if v and not k.startswith(("tcpcl:bundles",))}
    print(f"  b counters:   {json.dumps(counters)}")
    if traffic.problems:
        print(f"  errors:       {traffic.problems[:5]}")
    return 0 if lost_nothing else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds in all, baseline included (default 600)")
    p.add_argument("--size", default="16KiB", help="payload of each real bundle (default 16KiB)")
    p.add_argument("--window", type=int, default=32, help="real bundles in flight (default 32)")
    p.add_argument("--light", action="store_true", help="a tenth of the hostile clients (for a quick check)")
    p.add_argument("--dir", default=None, help="where the stores go (default: a temporary directory)")
    args = p.parse_args()
    size = parse_size(args.size)
    cfg = Attack()
    if args.light:
        cfg = Attack(slowloris=4, idle_tcpcl=20, idle_mtcp=20, partial=2, partial_mib=8, mutated=2, oversize=1)
    tmp = args.dir or tempfile.mkdtemp(prefix="hilnet-soak-")
    print(
        f"soak: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.node()}"
    )
    print(
        f"  duration {args.duration:g} s (baseline {max(3.0, args.duration * 0.2):g} s), real bundles of {format_size(size)}, window {args.window}"
    )
    print(f"  chain a -> b -> c over 127.0.0.1 TCPCLv4; b also on MTCP; b's limits {json.dumps(LIMITS)}")
    print(f"  attack on b: {cfg.describe()}")
    try:
        return soak(args.duration, size, args.window, tmp, cfg)
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
