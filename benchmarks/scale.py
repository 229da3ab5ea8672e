"""How ``hilnet run`` grows: 10 to 1,000 nodes, chains and grids, hosted agents against a process each.

Run (as root for the netns backend; it is skipped with the reason otherwise):

    python benchmarks/scale.py                                  # all sizes; about 20 minutes
    python benchmarks/scale.py --sizes 10,50 --shapes grid --backends loopback

Each case is one generated scenario (``hilnet.scenario.generate``: 10 Mbit/s
links, 5 ms delay, every link up 0-3 s and 5 s-1 min, five 1 KiB bundles from
the first node to the last, one a second from 1 s) run to settlement by
``hilnet run`` in a child process of its own, under a timeout. A chain longer
than a bundle's hop limit can carry (255) sends to node 200 instead. Figures
per case:

- build: wall time from ``run`` called to the run's start ``t0`` (testbed,
  links, agents started, clock-corrected and configured);
- fidelity: |applied - intended| of every link change, p50 / p99 / max;
- controller RSS: peak of the controller process (link engine included);
  total RSS: peak of the sum over the controller and all its descendants
  (agents or agent hosts), both sampled every 0.5 s;
- CPU per 1,000 events: controller, and controller plus agents
  (``getrusage`` of the child and of its reaped children), over the records
  in events.jsonl;
- wall time and the verdict (delivered of injected).

The placement is ``--agents auto`` (hosted from 20 nodes on loopback); the
baseline measured in the same run is the other placement (``--agents
process``, one process per node, or ``hosted`` below 20 nodes) at the sizes
where a process per node fits (``--baseline-max``): where the two cross is
the threshold ``auto`` uses. Plots of each figure
against the node count land in the output folder (matplotlib, the
``controller`` extra). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time

from hilnet.scenario.generate import Shape, chain, grid
from hilnet.testbed.hosting import HOST_FROM

SHAPE = Shape(count=5, start="1s", every="1s", duration="1m", windows=("0-3s", "5s-1m"))
MAX_CHAIN_SINK = 200  # a bundle's hop limit is at most 255: a longer chain sends to this node


def scenario_text(shape: str, n: int) -> str:
    if shape == "chain":
        text = chain(n, SHAPE)
        if n - 1 > MAX_CHAIN_SINK:
            text = text.replace(f"to: n{n - 1},", f"to: n{MAX_CHAIN_SINK},")
        return text
    rows = max(r for r in range(1, int(math.isqrt(n)) + 1) if n % r == 0)
    return grid(rows, n // rows, SHAPE)


# -- one case, in a child process --------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


class RssSampler(threading.Thread):
    """Peaks of this process's RSS and of its whole process tree's, KiB, sampled every ``period_s``."""

    def __init__(self, period_s: float = 0.5):
        super().__init__(daemon=True)
        self.period_s = period_s
        self.own_peak = self.total_peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(self.period_s):
            self.own_peak = max(self.own_peak, _rss_kib(me))
            self.total_peak = max(self.total_peak, sum(_rss_kib(p) for p in _descendants(me)))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _fidelity_us(records: list[dict]) -> tuple[float, float, float, int]:
    errs = sorted(
        abs(r["applied_wall_ns"] - r["intended_wall_ns"]) / 1000
        for r in records
        if r.get("src") == "link" and "applied_wall_ns" in r
    )
    if not errs:
        return 0.0, 0.0, 0.0, 0
    pick = lambda q: errs[min(len(errs) - 1, int(q * len(errs)))]  # noqa: E731
    return pick(0.5), pick(0.99), errs[-1], len(errs)


def run_case(shape: str, n: int, backend: str, agents: str, out: str) -> dict:
    """Run one case here; its figures (see the module docstring)."""
    from hilnet.controller.run import RunOptions, run

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "scenario.yaml")
    with open(path, "w") as f:
        f.write(scenario_text(shape, n))
    started: list[float] = []

    def progress(record: dict) -> None:
        if record.get("event") == "run-start" and not started:
            started.append(time.perf_counter())

    sampler = RssSampler()
    sampler.start()
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    result = run(
        path,
        RunOptions(backend=backend, out_dir=os.path.join(out, "run"), force=True, quiet=True, agents=agents),
        progress,
    )
    wall = time.perf_counter() - t
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.stop()
    records = list(result.events)
    own_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    kids_cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    hosts = next((r.get("hosts") for r in records if r.get("event") == "agents"), {}) or {}
    delivered = injected = 0
    if result.report is not None:
        for d, i in result.report.streams.values():
            delivered, injected = delivered + d, injected + i
    p50, p99, worst, changes = _fidelity_us(records)
    return {
        "shape": shape,
        "nodes": n,
        "links": sum(1 for line in open(path) if "ends: [" in line),
        "backend": backend,
        "agents": "hosted" if hosts else "process",
        "hosts": len(hosts),
        "exit": result.exit_code,
        "reason": result.reason,
        "delivered": delivered,
        "injected": injected,
        "build_s": (started[0] - t) if started else None,
        "wall_s": wall,
        "fidelity_us": {"p50": p50, "p99": p99, "max": worst, "changes": changes},
        "controller_rss_mib": sampler.own_peak / 1024,
        "total_rss_mib": sampler.total_peak / 1024,
        "events": len(records),
        "controller_cpu_per_1k": own_cpu / max(1, len(records)) * 1000,
        "total_cpu_per_1k": (own_cpu + kids_cpu) / max(1, len(records)) * 1000,
    }


# -- the whole benchmark -----------------------------------------------------------------


def cases(args: argparse.Namespace, netns_ok: bool) -> list[tuple[str, int, str, str]]:
    out = []
    for n in args.sizes:
        for shape in args.shapes:
            if "loopback" in args.backends:
                out.append((shape, n, "loopback", "auto"))
                if n <= args.baseline_max:  # the other placement, where a process each fits
                    out.append((shape, n, "loopback", "hosted" if n < HOST_FROM else "process"))
            if "netns" in args.backends and netns_ok and n <= args.netns_max:
                out.append((shape, n, "netns", "auto"))
    return out


def spawn_case(case: tuple[str, int, str, str], out: str, timeout_s: float) -> dict:
    shape, n, backend, agents = case
    folder = os.path.join(out, f"{shape}-{n}-{backend}-{agents}")
    argv = [sys.executable, __file__, "--case", f"{shape},{n},{backend},{agents}", "--out", folder]
    t = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"shape": shape, "nodes": n, "backend": backend, "agents": agents, "error": f"timeout {timeout_s:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"shape": shape, "nodes": n, "backend": backend, "agents": agents, "error": tail[0][:200]}
    figures = json.loads(lines[-1])
    figures["case_wall_s"] = time.perf_counter() - t
    return figures


def show(r: dict) -> str:
    head = f"{r['shape']:5} {r['nodes']:5} {r['backend']:8} {r['agents']:7}"
    if "error" in r:
        return f"{head}  failed: {r['error']}"
    fid = r["fidelity_us"]
    build = f"{r['build_s']:7.1f}" if r["build_s"] is not None else "      -"
    return (
        f"{head} {r['links']:5} {build} {fid['p50']:9.0f} {fid['p99']:9.0f} {fid['max']:9.0f}"
        f" {r['controller_rss_mib']:8.0f} {r['total_rss_mib']:8.0f} {r['total_rss_mib'] / r['nodes']:8.2f}"
        f" {r['controller_cpu_per_1k']:7.2f}"
        f" {r['total_cpu_per_1k']:7.2f} {r['wall_s']:7.1f}  {r['delivered']}/{r['injected']} exit {r['exit']}"
    )


HEADER = (
    "shape nodes backend  agents  links build_s  fid_p50us fid_p99us fid_maxus ctl_MiB  tot_MiB MiB/node"
    " ctl_cpu tot_cpu  wall_s  delivered"
)


def plot(results: list[dict], out: str) -> list[str]:
    """One PNG per figure against the node count, a line per (shape, backend, agents)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = [
        ("build_s", "testbed build (s)", lambda r: r["build_s"]),
        ("fidelity_p99_us", "schedule fidelity p99 (us)", lambda r: r["fidelity_us"]["p99"]),
        ("controller_rss_mib", "controller peak RSS (MiB)", lambda r: r["controller_rss_mib"]),
        ("total_rss_mib", "total peak RSS (MiB)", lambda r: r["total_rss_mib"]),
        ("cpu_per_1k_events", "CPU s per 1,000 events (all processes)", lambda r: r["total_cpu_per_1k"]),
    ]
    ok = [r for r in results if "error" not in r]
    written = []
    for name, label, value in figures:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for key in sorted({(r["shape"], r["backend"], r["agents"]) for r in ok}):
            pts = sorted((r["nodes"], value(r)) for r in ok if (r["shape"], r["backend"], r["agents"]) == key)
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=" ".join(key))
        ax.set_xscale("log")
        ax.set_xlabel("nodes")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        path = os.path.join(out, f"{name}.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,50,100,200,500,1000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--shapes", default="chain,grid", type=lambda s: s.split(","))
    ap.add_argument("--backends", default="loopback,netns", type=lambda s: s.split(","))
    ap.add_argument("--baseline-max", type=int, default=100, help="largest size run with a process per node")
    ap.add_argument("--netns-max", type=int, default=100, help="largest size run on the netns backend")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    ap.add_argument("--out", default=None, help="output folder [default: runs/scale-<time>]")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one case, in a child process
    args = ap.parse_args()
    if args.case:
        shape, n, backend, agents = args.case.split(",")
        print(json.dumps(run_case(shape, int(n), backend, agents, args.out)))
        return 0
    from hilnet.testbed.netns import netns_available

    out = args.out or os.path.join("runs", time.strftime("scale-%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    netns_ok, why = netns_available()
    print(
        f"hilnet scale benchmark — {platform.node()}, {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, Python {platform.python_version()}, "
        f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"scenario: {SHAPE}; netns: {'yes' if netns_ok else 'skipped: ' + why}; output: {out}\n")
    print(HEADER)
    results = []
    for case in cases(args, netns_ok):
        results.append(spawn_case(case, out, args.timeout))
        print(show(results[-1]), flush=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    for path in plot(results, out):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
