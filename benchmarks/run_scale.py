"""How ``hilnet run`` scales: testbed build and teardown, a day of scenario, controller CPU.

Run (as root for the netns backend; it is skipped with the reason otherwise):

    python benchmarks/run_scale.py                 # about 5 minutes: both backends
    python benchmarks/run_scale.py --backends loopback --nodes 4,20 --no-day

Figures, each beside its target:

- testbed up: wall time from nothing to every agent started, clock-corrected
  and configured, for a generated chain of N nodes (Ethernet links, every
  third one serial); target: 4 nodes in <= 2 s; 50 nodes must run.
- teardown: wall time to stop the agents and links and remove the testbed.
- a 24-hour scenario at scale 1440 (60 s of scenario replay): four nodes,
  periodic windows, a bundle every 20 minutes; target <= 70 s of wall time.
- controller CPU per 1,000 events of that run: ``getrusage(RUSAGE_SELF)`` of
  this process, which is the controller *and* its in-process link engine
  thread, over the records in events.jsonl. The agents' CPU is shown apart
  (``RUSAGE_CHILDREN``, counted once they are reaped).

Baseline measured in the same run: the wall time to start one bare
``python -m hilnet --version`` process (the floor of every agent start).
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from hilnet.controller.run import START_MARGIN_NS, RunOptions, run
from hilnet.controller.session import Session
from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan
from hilnet.testbed.netns import netns_available

RESULTS: list[tuple[str, bool, str]] = []


def chain_scenario(n: int) -> str:
    nodes = "\n".join(f"  n{i}: {{eid: ipn:{i + 1}.0}}" for i in range(n))
    links = []
    for i in range(n - 1):
        if i % 3 == 2:
            links.append(f"  l{i}: {{ends: [n{i}, n{i + 1}], medium: serial, baud: 115200, delay: 5ms}}")
        else:
            links.append(f"  l{i}: {{ends: [n{i}, n{i + 1}], medium: ethernet, rate: 10Mbit/s, delay: 5ms}}")
    return (
        f"hilnet: 1\nname: chain-{n}\nclock: {{scale: 1, duration: 1m}}\nnodes:\n{nodes}\n"
        f"links:\n" + "\n".join(links) + f"\ntraffic:\n  - {{from: n0, to: n{n - 1}, size: 1KiB}}\n"
    )


def day_scenario() -> str:
    # Windows of 60 min every 90 min on the first two hops, overlapping each other by
    # half; the last hop always up. At scale 1440 an hour is 2.5 s of wall time.
    def windows(offset_min: int) -> str:
        spans = []
        t = offset_min
        while t + 60 <= 24 * 60:
            spans.append(f"{t}m-{t + 60}m")
            t += 90
        return "[" + ", ".join(spans) + "]"

    return textwrap.dedent(f"""\
        hilnet: 1
        name: day
        seed: 5
        clock: {{scale: 1440, duration: 24h}}
        nodes:
          sat: {{eid: ipn:1.0}}
          relay: {{eid: ipn:2.0}}
          gs: {{eid: ipn:3.0}}
          moc: {{eid: ipn:4.0}}
        links:
          sat-relay: {{ends: [sat, relay], medium: ethernet, rate: 2Mbit/s, delay: 125ms, loss: 0.1%,
                       up: {windows(0)}}}
          relay-gs: {{ends: [relay, gs], medium: serial, baud: 115200, delay: 125ms, up: {windows(30)}}}
          gs-moc: {{ends: [gs, moc], medium: ethernet, rate: 100Mbit/s, delay: 20ms}}
        traffic:
          - {{name: telemetry, from: sat, to: moc, start: 5m, every: 20m, size: 2KiB, lifetime: 12h}}
        expect: {{delivered: 90%, lost: 0}}
        """)


def bare_start_s(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hilnet", "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def testbed_cycle(backend: str, n: int, work: str) -> tuple[float, float, int]:
    """(seconds to up and configured, seconds to tear down, leftovers) for a chain of ``n``."""
    path = os.path.join(work, f"chain-{n}-{backend}.yaml")
    with open(path, "w") as f:
        f.write(chain_scenario(n))
    scenario = load_scenario(path)
    plan = compile_plan(scenario)
    run_dir = os.path.join(work, f"chain-{n}-{backend}")
    os.makedirs(run_dir)
    replay = Session(scenario, plan, run_dir, backend, "benchmark")
    t = time.perf_counter()
    try:
        replay.build()  # and arms every link and node
        replay.start(replay.clock.now_ns() + START_MARGIN_NS)
        up = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        left = replay.teardown()
        down = time.perf_counter() - t
        replay.log.close()
    return up, down, len(left)


def day_run(backend: str, work: str) -> dict:
    path = os.path.join(work, f"day-{backend}.yaml")
    with open(path, "w") as f:
        f.write(day_scenario())
    out = os.path.join(work, f"day-{backend}")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    result = run(path, RunOptions(backend=backend, out_dir=out, quiet=True, until_settled=False), say=lambda msg: None)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(out, "events.jsonl")) as f:
        records = sum(1 for _ in f)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    agents_cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    delivered = injected = 0
    if result.report is not None:
        for d, n in result.report.streams.values():
            delivered, injected = delivered + d, injected + n
    return {
        "wall": wall,
        "exit": result.exit_code,
        "records": records,
        "cpu": cpu,
        "agents_cpu": agents_cpu,
        "delivered": delivered,
        "injected": injected,
        "reason": result.reason,
    }


def report(name: str, ok: bool, text: str) -> None:
    RESULTS.append((name, ok, text))
    print(f"  {'met ' if ok else 'MISS'} {name}: {text}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="loopback,netns")
    ap.add_argument("--nodes", default="4,50", help="chain sizes to build and tear down")
    ap.add_argument("--no-day", action="store_true", help="skip the 24-hour scenario")
    args = ap.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    ok_netns, why = netns_available()
    if "netns" in backends and not ok_netns:
        print(f"netns backend skipped: {why}")
        backends.remove("netns")

    print(
        f"hilnet run scale benchmark — {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    base = bare_start_s()
    print(
        f"baseline: one bare `python -m hilnet --version` process starts and exits in {base * 1000:.0f} ms "
        f"(median of 5)\n"
    )

    with tempfile.TemporaryDirectory(prefix="hilnet-run-scale-") as work:
        print("testbed up (agents started, clock-corrected, configured) and teardown, generated chain:")
        for backend in backends:
            for n in (int(x) for x in args.nodes.split(",")):
                try:
                    up, down, left = testbed_cycle(backend, n, work)
                except Exception as e:  # a figure that could not be taken is printed, not hidden
                    report(f"{backend} {n} nodes", False, f"failed: {type(e).__name__}: {e}")
                    continue
                per = up / n
                text = (
                    f"up {up:.2f} s ({per * 1000:.0f} ms per node, {per / base:.1f}x a bare start), "
                    f"teardown {down:.2f} s" + (f", {left} things left behind" if left else "")
                )
                if n == 4:
                    report(f"{backend} 4 nodes up <= 2 s", up <= 2.0 and not left, text)
                else:
                    report(f"{backend} {n} nodes run", not left, text)

        if not args.no_day:
            print(
                "\n24-hour scenario at scale 1440 (60 s of replay; 4 nodes, periodic windows, "
                "72 bundles of 2 KiB), full duration:"
            )
            for backend in backends:
                d = day_run(backend, work)
                report(
                    f"{backend} 24 h at scale 1440 within 70 s",
                    d["wall"] <= 70 and d["exit"] in (0, 1),
                    f"{d['wall']:.1f} s wall (60 s replay + {d['wall'] - 60:.1f} s build/teardown/reports), "
                    f"exit {d['exit']}, delivered {d['delivered']}/{d['injected']}",
                )
                per_k = d["cpu"] / max(1, d["records"]) * 1000
                report(
                    f"{backend} controller CPU per 1,000 events",
                    True,
                    f"{per_k * 1000:.0f} ms CPU per 1,000 records ({d['cpu']:.2f} s controller+engine CPU over "
                    f"{d['records']} records); agents {d['agents_cpu']:.2f} s CPU",
                )

    missed = [name for name, ok, _ in RESULTS if not ok]
    print(
        f"\n{len(RESULTS) - len(missed)} of {len(RESULTS)} targets met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
