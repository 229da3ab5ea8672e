"""Units per second through one shaper Direction, against a bare deque loop.

Prints figures; never passes or fails. The engine's target is >= 50,000
frames/s of 1500 B unimpaired, so the shaper's share of a frame must be a
small fraction of 20 us.

    python benchmarks/shaper.py [--units N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import deque

from hilnet.link.shaper import Direction, DirectionConfig, Medium

FRAME = bytes(1500)
GAP_NS = 10_000  # offered every 10 us: 100,000 frames/s of 1500 B = 1.2 Gbit/s


def bare_deque(n: int) -> float:
    """The floor: one tuple per frame through a deque, accept-then-pop like the engine."""
    q: deque = deque()
    t0 = time.perf_counter()
    now = 0
    for _ in range(n):
        q.append((now, FRAME))
        while q and q[0][0] <= now:
            q.popleft()
        now += GAP_NS
    return n / (time.perf_counter() - t0)


def through(config: DirectionConfig, medium: Medium, n: int) -> tuple[float, int]:
    """Drive a Direction the way the engine does: accept, then pop what is due."""
    d = Direction(config, medium, seed=1)
    out = 0
    accept, pop_due = d.accept, d.pop_due
    t0 = time.perf_counter()
    now = 0
    for _ in range(n):
        accept(FRAME, now)
        out += len(pop_due(now))
        now += GAP_NS
    out += len(d.pop_due(now + 10**12))
    return n / (time.perf_counter() - t0), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=200_000)
    n = ap.parse_args().units
    print(
        f"python {sys.version.split()[0]} on {platform.machine()} ({platform.processor() or 'cpu?'}), "
        f"{n} units of {len(FRAME)} B offered every {GAP_NS} ns"
    )
    cases = [
        ("unimpaired, no delay", DirectionConfig(), Medium.ETHERNET),
        ("unimpaired, 130 ms delay", DirectionConfig(delay_ns=130_000_000), Medium.ETHERNET),
        ("1 Gbit/s + 130 ms delay", DirectionConfig(rate_bps=10**9, delay_ns=130_000_000), Medium.ETHERNET),
        (
            "impaired: 1 Gbit/s, 130 ms +- 1 ms, 0.5% loss, BER 1e-9, 1000-frame queue",
            DirectionConfig(
                rate_bps=10**9, delay_ns=130_000_000, jitter_ns=1_000_000, loss=0.005, ber=1e-9, queue_units=1000
            ),
            Medium.ETHERNET,
        ),
        (
            "impaired: Gilbert-Elliott + BER 1e-7",
            DirectionConfig(gilbert=(0.01, 0.3, 0.0, 0.5), ber=1e-7, delay_ns=10_000_000),
            Medium.ETHERNET,
        ),
    ]
    base = bare_deque(n)
    print(f"{'baseline: bare deque append/popleft':<75} {base:>12,.0f} units/s")
    for label, cfg, medium in cases:
        rate, out = through(cfg, medium, n)
        print(f"{label:<75} {rate:>12,.0f} units/s  ({rate / base:.2f} x baseline, {out} delivered)")


if __name__ == "__main__":
    main()
