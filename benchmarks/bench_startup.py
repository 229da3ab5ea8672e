"""How long ``hilnet run --bench`` takes to its first injection, and how much jitter an rfc2217:// port adds.

Run as root on Linux with Debian's openssh-server and ser2net (about 4 minutes):

    python benchmarks/bench_startup.py

It builds the emulated bench of tests/bench/ with all five ISS nodes on
boards (namespaces with their own sshd; ptys joined by null modems for
UARTs; veths for NICs; tdrs-w's UART through ser2net as rfc2217://),
installs hilnet on them with ``hilnet bench install``, and measures:

1. **Startup**: wall time from starting ``hilnet run ISS --bench`` to its
   first ``inject`` record (target <= 10 s), split at ``run-start``, beside
   the same figure for ``--backend netns`` on this host (the baseline: no SSH).
   The scenario's first injection is 1 scenario minute = 1 s of wall time
   after ``run-start``.
2. **Remote-port jitter**: with the bench still up and no agent on it, one
   link between the emulator's two ports of the serial link tdrs-e-tdrs-w —
   a local pty (``serial://``) and the ser2net port (``rfc2217://``) — carries
   small messages written at one board's UART and read at the other's, in
   both directions, with no delay (the serial ports pace at their 115200 baud:
   1.39 ms for 16 bytes); the same through a ``pty://``-``pty://`` link, which
   has no line speed, is the baseline, so compare spreads, not medians. The
   spread of one-way times (p99 - p50, and the standard deviation) into the
   rfc2217 side and out of it, against the baseline, is the jitter the remote
   port adds (the null modems of the emulated UARTs are in the remote path too).

Nothing here asserts: it prints figures, the configuration and the targets.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "bench"))
sys.path.insert(0, str(REPO))

from emulated_bench import ROOT, WHEELHOUSE, EmulatedBench, make_wheelhouse, unavailable  # noqa: E402

ISS = REPO / "scenarios" / "iss-tdrs-ground.yaml"
EMULATED = REPO / "tests" / "bench" / "emulated.yaml"
MS = 1e-3


def five_boards(folder: str) -> str:
    """emulated.yaml with eac on a board of its own too."""
    text = EMULATED.read_text()
    text = text.replace(
        "nodes:\n",
        f"  pi-eac:\n    ssh: hb-eac\n    model: pi4\n    hilnet: {ROOT}/pi-eac/venv\n"
        f"    store: {ROOT}/pi-eac/stores\n\nnodes:\n",
    )
    text = text.replace("  wsc: pi-wsc\n", "  wsc: pi-wsc\n  eac: pi-eac\n")
    text += "    eac:    {nic: eth1, address: 10.79.4.2/24, emulator: hbe-eac1}\n"
    path = os.path.join(folder, "five.yaml")
    Path(path).write_text(text)
    return path


def hilnet(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hilnet", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def time_to_first_injection(args: list[str], run_dir: str) -> tuple[float, float, int]:
    """(s to run-start, s to the first inject, exit status) of ``hilnet run ISS ARGS``."""
    started = time.monotonic()
    proc = hilnet("run", str(ISS), *args, "--out", run_dir, "-q")
    log = Path(run_dir) / "events.jsonl"
    to_start = to_inject = float("nan")
    while proc.poll() is None and to_inject != to_inject:
        text = log.read_text() if log.exists() else ""
        if to_start != to_start and '"run-start"' in text:
            to_start = time.monotonic() - started
        if '"event": "inject"' in text or '"event":"inject"' in text:
            to_inject = time.monotonic() - started
        time.sleep(0.01)
    proc.terminate()  # the figure is taken; the rest of the run is not needed
    proc.communicate(timeout=60)
    return to_start, to_inject, proc.returncode


def transit_times(spec_a: str, spec_b: str, a_path: str, b_path: str, n: int = 300) -> dict[str, list[float]]:
    """One-way times (s) of ``n`` 16-byte messages each way through one engine link between the specs."""
    from hilnet.link.engine import Engine

    engine = Engine()
    engine.add_link("jitter", spec_a, spec_b)
    engine.start()
    fds = {}
    try:
        for end, path in (("a", a_path), ("b", b_path)):
            for _ in range(200):
                if os.path.exists(path):
                    break
                time.sleep(0.01)
            fds[end] = os.open(path, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(fds[end])
        time.sleep(0.3)
        out: dict[str, list[float]] = {"a->b": [], "b->a": []}
        for way in out:
            src, dst = fds[way[0]], fds[way[-1]]
            for i in range(n):
                msg = f"{i:015d}\n".encode()
                t0 = time.perf_counter()
                os.write(src, msg)
                got = b""
                while len(got) < len(msg):
                    r, _, _ = select.select([dst], [], [], 1.0)
                    if not r:
                        break
                    got += os.read(dst, 64)
                if got == msg:
                    out[way].append(time.perf_counter() - t0)
                time.sleep(0.002)
        return out
    finally:
        for fd in fds.values():
            os.close(fd)
        engine.stop()
        engine.join(5)
        engine.close()


def spread(times: list[float]) -> str:
    if len(times) < 10:
        return f"only {len(times)} samples"
    q = statistics.quantiles(times, n=100)
    return (
        f"p50 {q[49] / MS:6.3f} ms  p99-p50 {(q[98] - q[49]) / MS:6.3f} ms  "
        f"stdev {statistics.stdev(times) / MS:6.3f} ms  ({len(times)} messages)"
    )


def main() -> None:
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    folder = tempfile.mkdtemp(prefix="hilnet-bench-startup-")
    bench = five_boards(folder)
    eb = EmulatedBench(bench)
    try:
        make_wheelhouse()
        eb.up()
        t = time.monotonic()
        install = hilnet("bench", "install", bench, "--wheelhouse", str(WHEELHOUSE))
        out, err = install.communicate(timeout=1200)
        print(f"hilnet bench install on 5 boards: {time.monotonic() - t:.1f} s (exit {install.returncode})")
        if install.returncode != 0:
            print(out, err)
            return
        s_start, s_inject, _ = time_to_first_injection(["--bench", bench], os.path.join(folder, "bench-run"))
        n_start, n_inject, _ = time_to_first_injection(["--backend", "netns"], os.path.join(folder, "netns-run"))
        print("\nstartup of the ISS scenario (first injection is 1.0 s after run-start at scale 60):")
        print(
            f"  bench, 5 boards over SSH: run-start {s_start:5.2f} s, first injection {s_inject:5.2f} s (target <= 10 s)"
        )
        print(f"  netns baseline, no SSH:   run-start {n_start:5.2f} s, first injection {n_inject:5.2f} s")
        print(f"  target met: {s_inject <= 10}")
        emu = f"{ROOT}/emu"
        remote = transit_times(
            f"serial://{emu}/ttyUSB0?baud=115200",
            "rfc2217://127.0.0.1:47217?baud=115200",
            f"{ROOT}/pi-tdrs-e/ttyAMA0",
            f"{ROOT}/pi-tdrs-w/ttyAMA0",
        )
        local = transit_times(f"pty://{folder}/a", f"pty://{folder}/b", f"{folder}/a", f"{folder}/b")
        print("\none-way time of a 16-byte message, no delay or rate on the link (115200 baud ports):")
        print(f"  local pty -> rfc2217 (ser2net): {spread(remote['a->b'])}")
        print(f"  rfc2217 (ser2net) -> local pty: {spread(remote['b->a'])}")
        print(f"  baseline pty -> pty:            {spread(local['a->b'])}")
        for way, label in (("a->b", "into the rfc2217 port"), ("b->a", "out of the rfc2217 port")):
            if len(remote[way]) > 10 and len(local["a->b"]) > 10:
                extra = statistics.stdev(remote[way]) - statistics.stdev(local["a->b"])
                print(f"  extra jitter {label}: {extra / MS:+.3f} ms (stdev over the baseline)")
        print(json.dumps({"bench_first_injection_s": s_inject, "netns_first_injection_s": n_inject}))
    finally:
        eb.down()
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        left = eb.leftovers()
        if left:
            print(f"left behind: {left}")


if __name__ == "__main__":
    main()
