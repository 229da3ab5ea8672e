"""Generated chains of growing length through ``hilnet run``: verdict, schedule fidelity, memory, time.

Run (as root for the netns backend, which is skipped with the reason otherwise):

    python benchmarks/chain_scale.py                       # 5, 30, 60, 100 nodes; both backends
    python benchmarks/chain_scale.py --nodes 30,100 --backends loopback
    python benchmarks/chain_scale.py --windows         # every link closes at 20 s, reopens at 22 s

Each row is one ``hilnet run`` of ``hilnet.scenario.generate.chain(N)`` (Ethernet links
of 10 Mbit/s and 5 ms, five 1 KiB bundles end to end, one a second) as a subprocess:

With ``--windows`` every link also closes at 20 s and opens again at 22 s: 2 x 2 x (N - 1)
link changes at two instants, after the five bundles are through, which measures how late
the last of many simultaneous changes comes (without it, the only changes are the links'
state at scenario time 0, set before the run's start).

- verdict, and bundles delivered of injected;
- schedule fidelity: |applied - intended| of every link change, p50 and p99 (summary.json),
  the run's own ``fidelity`` row;
- controller peak RSS: the largest process of the run as ``wait4`` reports it (the
  controller; an agent is about 35 MB);
- build: wall time from the command's start to the run's ``t0`` (testbed, agents, arming);
- wall: the whole command.

Baseline in the same run: the 5-node chain, against which each row's build time per
node is given. The issue's figures before this work, for reference: 30 nodes p50 598 ms;
60 nodes 1.8 s; 100 nodes FAIL (5 of 5 "lost" at a hop limit of 32), p50 3.03 s.
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from hilnet.scenario.generate import Shape, chain
from hilnet.testbed.netns import netns_available

WINDOWS = ("0-20s", "22s-25s")


def run_chain(n: int, backend: str, work: str, windows: bool) -> dict:
    path = os.path.join(work, f"chain-{n}.yaml")
    with open(path, "w") as f:
        f.write(chain(n, Shape(windows=WINDOWS if windows else None, duration="25s" if windows else "1m")))
    out = os.path.join(work, f"chain-{n}-{backend}")
    argv = [sys.executable, "-m", "hilnet", "run", path, "--backend", backend, "--out", out, "-q"]
    if windows:
        argv.append("--full-duration")  # to 25 s: past the changes at 20 and 22 s
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    row = {"n": n, "backend": backend, "exit": proc.returncode, "wall": wall, "rss_mb": usage.ru_maxrss / 1024}
    try:
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    except OSError:
        return row | {"error": err.strip().splitlines()[-1] if err.strip() else "no summary"}
    results = {r["name"]: r for r in s["results"]}
    row |= {
        "passed": s["passed"],
        "delivered": results["delivered"]["actual"],
        "p50": s["fidelity"]["p50_ns"],
        "p99": s["fidelity"]["p99_ns"],
        "fidelity": results.get("fidelity", {}).get("actual", "-"),
        "failed": [r["name"] for r in s["results"] if not r["passed"]],
    }
    with open(os.path.join(out, "events.jsonl")) as f:
        first = json.loads(f.readline())
    row["build"] = -first["wall_ns"] / 1e9  # the first record (testbed built) is this long before t0
    return row


def us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f} us" if ns < 1_000_000 else f"{ns / 1e6:.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="loopback,netns")
    ap.add_argument("--nodes", default="5,30,60,100", help="chain lengths; the first is the baseline")
    ap.add_argument("--windows", action="store_true", help="every link closes at 20 s and opens at 22 s")
    args = ap.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    ok, why = netns_available()
    if "netns" in backends and not ok:
        print(f"netns backend skipped: {why}")
        backends.remove("netns")
    sizes = [int(x) for x in args.nodes.split(",")]
    print(
        f"hilnet chain scale — {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}; chain of N nodes, 10 Mbit/s 5 ms Ethernet links, 5 x 1 KiB end to end"
        + (f", every link up {' and '.join(WINDOWS)}" if args.windows else "")
        + "\n"
    )
    header = f"{'backend':8} {'nodes':>5}  {'verdict':7} {'delivered':9}  {'fidelity p50':>12} {'p99':>10}  "
    print(header + f"{'peak RSS':>8}  {'build':>7} {'per node':>9}  {'wall':>6}")
    with tempfile.TemporaryDirectory(prefix="hilnet-chain-scale-") as work:
        for backend in backends:
            base = None
            for n in sizes:
                r = run_chain(n, backend, work, args.windows)
                if "error" in r:
                    print(f"{backend:8} {n:>5}  exit {r['exit']}: {r['error']}")
                    continue
                per = r["build"] / n
                base = base or per
                verdict = "PASS" if r["passed"] else "FAIL"
                print(
                    f"{backend:8} {n:>5}  {verdict:7} {r['delivered']:9}  {us(r['p50']):>12} {us(r['p99']):>10}  "
                    f"{r['rss_mb']:>5.0f} MB  {r['build']:>5.1f} s {per * 1000:>6.0f} ms  {r['wall']:>5.1f}s"
                    + (f"  failed: {', '.join(r['failed'])}" if r["failed"] else "")
                    + (f"  ({per / base:.1f}x the {sizes[0]}-node build per node)" if n != sizes[0] else "")
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
