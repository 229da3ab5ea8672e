"""The time a run with ION on every node takes, beside the same run with hilnet's agents.

One scenario (default: scenarios/iss-tdrs-ground-all-ion.yaml, 5 nodes, 95 s of wall
time), run twice with ``hilnet run --backend netns``: as written (every node
``stack: ion``) and with every ``stack: ion`` removed, so hilnet's agents play the same
nodes over the same TCPCLv3 links (the baseline, measured in the same sitting). For each
it prints the whole command's wall time, the start-up (from the first controller record
to the run's t0: namespaces, stacks started and configured), the run itself (t0 to the
run's end) and the teardown, and the outcome (exit status, delivered, max latency).

    python benchmarks/ion_run.py [--scenario FILE] [--repeat 1] [--dir DIR]

Needs root (netns) and ION (scripts/build-ion). Other ION processes on the host
(another run's ``ionstop`` ends with ``killm``, which kills every ION process by name)
spoil the ION figure: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(scenario: Path, out: Path) -> dict[str, object]:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(scenario), "--backend", "netns", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    wall = time.monotonic() - t0
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]
    first = min(r["wall_ns"] for r in records if r.get("src") == "controller") / 1e9  # negative: before t0
    end = next(r for r in records if r.get("event") == "run-end")
    summary = json.loads((out / "summary.json").read_text())
    results = {r["name"]: r for r in summary["results"]}
    return {
        "exit": p.returncode,
        "wall_s": wall,
        "startup_s": -first,
        "run_s": end["wall_ns"] / 1e9,
        "teardown_s": wall - (-first) - end["wall_ns"] / 1e9,
        "delivered": results["delivered"]["actual"],
        "within": results.get("within", {}).get("actual", "-"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "iss-tdrs-ground-all-ion.yaml"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", default=None, help="where the run folders go (default: a temporary folder)")
    args = ap.parse_args()
    scenario = Path(args.scenario)
    work = Path(args.dir or tempfile.mkdtemp(prefix="hilnet-ion-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    hilnet_version = work / f"{scenario.stem}-hilnet.yaml"
    hilnet_version.write_text(re.sub(r",\s*stack:\s*ion", "", scenario.read_text()))
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# scenario {scenario.name}; ION prefix {os.environ.get('HILNET_ION_PREFIX', '(default)')}")
    print(
        f"{'stack':8} {'exit':>4} {'wall s':>7} {'start-up s':>10} {'run s':>6} {'teardown s':>10}  delivered  within"
    )
    for i in range(args.repeat):
        for label, sc in (("ion", scenario), ("hilnet", hilnet_version)):
            r = run_once(sc, work / f"{label}-{i}")
            print(
                f"{label:8} {r['exit']:>4} {r['wall_s']:>7.1f} {r['startup_s']:>10.1f} {r['run_s']:>6.1f} "
                f"{r['teardown_s']:>10.1f}  {r['delivered']:<9}  {r['within']}"
            )
    print(f"# run folders in {work}")


if __name__ == "__main__":
    main()
