"""How late the link engine applies scripted edges while the controller's other threads work.

Run:

    python benchmarks/engine_lock.py            # about 1 minute
    python benchmarks/engine_lock.py --quick    # fewer edges, rougher figures

``hilnet run`` runs the link engine as a thread of the controller, beside the
threads that read the agents' events, inject traffic and draw the live view.
They share one interpreter lock: when the engine wakes for a window edge while
another thread holds it, the edge waits. This script runs one UDP link whose
gate flips every few milliseconds, in this process, as the controller does, and
measures |applied - intended| of every edge (the figure ``expect.fidelity``
judges) in five configurations, all in the same run:

- quiet: no other thread (the baseline);
- busy, 5 ms switch interval: a thread making 512 KiB payloads and hashing
  them, and doing pure-Python work, with Python's default lock hand-over;
- busy, the engine's switch interval (what ``Engine.start`` sets);
- payload digests computed before the run (only the pure-Python work left at
  edge time, as ``hilnet run`` now does), with either interval.

Nothing here asserts: the script prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time

from hilnet.agent.payload import payload_sha256
from hilnet.link.engine import ENGINE_SWITCH_INTERVAL_S, Engine
from hilnet.link.shaper import DirectionConfig, ScheduleEvent

MS = 1_000_000
PYTHON_DEFAULT_SWITCH_S = 0.005


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busy(stop: threading.Event, payloads: bool) -> None:
    """What the controller's other threads do: make and hash payloads, parse and format records."""
    record = json.dumps({"event": "forwarded", "bundle": "ipn:1.1/1", "t_ns": 1, "node": "n" * 20} | {"k": [1] * 50})
    seed = 0
    while not stop.is_set():
        if payloads:
            seed += 1
            payload_sha256(seed, 512 * 1024)
        for _ in range(200):
            json.loads(record)
        sum(i * i for i in range(2000))


def lateness(edges: int, period_ms: int, switch_s: float, load: str) -> list[int]:
    """|applied - intended| of each edge, ns."""
    got: list[int] = []

    def on_event(ev: dict) -> None:
        if ev.get("event") in ("up", "down") and "applied_ns" in ev:
            got.append(abs(ev["applied_ns"] - ev["at_ns"]))

    allowed = os.geteuid() == 0
    engine = Engine(on_event=on_event, realtime_priority=10 if allowed else None)
    pa, pb = free_port(), free_port()
    handle = engine.add_link(
        "bench",
        f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
        f"udp://127.0.0.1:{pb}?peer=127.0.0.1:1",
        ab=DirectionConfig(),
    )
    engine.start()
    sys.setswitchinterval(switch_s)  # after start: Engine.start sets its own
    stop = threading.Event()
    workers = [] if load == "quiet" else [threading.Thread(target=busy, args=(stop, load == "payloads"))]
    for w in workers:
        w.start()
    t0 = engine.clock.now_ns() + 200 * MS
    for i in range(edges):
        handle.schedule("a->b", ScheduleEvent(at_ns=t0 + i * period_ms * MS, up=i % 2 == 0))
    time.sleep(0.2 + edges * period_ms / 1000 + 0.2)
    stop.set()
    for w in workers:
        w.join()
    engine.stop()
    engine.join(5)
    return got


def row(name: str, values: list[int]) -> str:
    v = sorted(values)
    p99 = v[min(len(v) - 1, round(0.99 * (len(v) - 1)))]
    return (
        f"{name:<48} edges {len(v):>4}  p50 {statistics.median(v) / 1e3:8.1f} us  "
        f"p99 {p99 / 1e3:8.1f} us  max {v[-1] / 1e3:8.1f} us  over 1 ms {sum(x > MS for x in v):>3}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer edges, rougher figures")
    args = ap.parse_args()
    edges, period = (200, 7) if args.quick else (1000, 7)
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{edges} edges {period} ms apart on one UDP link; engine SCHED_FIFO: {os.geteuid() == 0}")
    print(f"engine switch interval {ENGINE_SWITCH_INTERVAL_S * 1e3:g} ms, Python's default 5 ms")
    print(row("quiet (baseline)", lateness(edges, period, PYTHON_DEFAULT_SWITCH_S, "quiet")))
    print(
        row("payloads at edge time, 5 ms switch (before)", lateness(edges, period, PYTHON_DEFAULT_SWITCH_S, "payloads"))
    )
    print(row("payloads at edge time, engine switch", lateness(edges, period, ENGINE_SWITCH_INTERVAL_S, "payloads")))
    print(row("digests ahead, 5 ms switch", lateness(edges, period, PYTHON_DEFAULT_SWITCH_S, "python")))
    print(row("digests ahead, engine switch (now)", lateness(edges, period, ENGINE_SWITCH_INTERVAL_S, "python")))


if __name__ == "__main__":
    main()
