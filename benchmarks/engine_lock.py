"""How late the link engine applies window edges when the controller injects bundles at those instants.

Run:

    python benchmarks/engine_lock.py            # about 1 minute
    python benchmarks/engine_lock.py --quick    # fewer edges, rougher figures

``hilnet run`` runs the link engine as a thread of the controller, beside the
thread that injects traffic; they share one interpreter lock. Making a payload's
bytes to hash them holds that lock for the whole call, so an injection due at the
same instant as a window edge made the edge wait for it. The controller now works
out every payload's digest before the run starts. This script runs one UDP link
whose gate flips every few milliseconds, in this process, as the controller does,
with a thread that "injects" a 512 KiB bundle at each edge's instant, and measures
|applied - intended| of every edge (what ``expect.fidelity`` judges), in the same run:

- quiet: no injections (the baseline);
- digest at injection: the injecting thread makes and hashes the payload (before);
- digest ahead: it looks the digest up, as ``hilnet run`` now does.

Nothing here asserts: the script prints figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import threading
import time

from hilnet.agent.payload import payload_sha256
from hilnet.link.engine import Engine
from hilnet.link.shaper import DirectionConfig, ScheduleEvent

MS = 1_000_000
SIZE = 512 * 1024  # a navigation image of the Mars scenario


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def injector(engine: Engine, instants: list[int], digest_ahead: bool) -> None:
    """At each edge's instant, what the controller's injection does with the payload's digest."""
    ahead = {i: payload_sha256(i, SIZE) for i in range(len(instants))} if digest_ahead else {}
    for i, at in enumerate(instants):
        while engine.clock.now_ns() < at:
            time.sleep(max(0.0, (at - engine.clock.now_ns()) / 1e9 - 0.0002))
        ahead.get(i) or payload_sha256(i, SIZE)


def lateness(edges: int, period_ms: int, load: str) -> list[int]:
    """|applied - intended| of each edge, ns."""
    got: list[int] = []

    def on_event(ev: dict) -> None:
        if ev.get("event") in ("up", "down") and "applied_ns" in ev:
            got.append(abs(ev["applied_ns"] - ev["at_ns"]))

    engine = Engine(on_event=on_event, realtime_priority=10 if os.geteuid() == 0 else None)
    pa, pb = free_port(), free_port()
    handle = engine.add_link(
        "bench",
        f"udp://127.0.0.1:{pa}?peer=127.0.0.1:1",
        f"udp://127.0.0.1:{pb}?peer=127.0.0.1:1",
        ab=DirectionConfig(),
    )
    engine.start()
    t0 = engine.clock.now_ns() + 300 * MS
    instants = [t0 + i * period_ms * MS for i in range(edges)]
    for i, at in enumerate(instants):
        handle.schedule("a->b", ScheduleEvent(at_ns=at, up=i % 2 == 1))
    if load != "quiet":
        threading.Thread(target=injector, args=(engine, instants, load == "ahead"), daemon=True).start()
    time.sleep(0.3 + edges * period_ms / 1000 + 0.2)
    engine.stop()
    engine.join(5)
    return got


def row(name: str, values: list[int]) -> str:
    v = sorted(values)
    p99 = v[min(len(v) - 1, round(0.99 * (len(v) - 1)))]
    return (
        f"{name:<34} edges {len(v):>4}  p50 {statistics.median(v) / 1e3:8.1f} us  "
        f"p99 {p99 / 1e3:8.1f} us  max {v[-1] / 1e3:8.1f} us  over 1 ms {sum(x > MS for x in v):>3}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer edges, rougher figures")
    args = ap.parse_args()
    edges, period = (200, 20) if args.quick else (1000, 20)
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{edges} edges {period} ms apart on one UDP link, a {SIZE // 1024} KiB injection at each")
    print(f"engine SCHED_FIFO: {os.geteuid() == 0}")
    print(row("quiet (baseline)", lateness(edges, period, "quiet")))
    print(row("digest at injection (before)", lateness(edges, period, "at-injection")))
    print(row("digest ahead (now)", lateness(edges, period, "ahead")))


if __name__ == "__main__":
    main()
