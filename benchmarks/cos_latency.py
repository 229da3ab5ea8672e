"""Expedited latency under a saturating bulk load on the serial CLA, with and without classes of service.

Two real SerialSessions run over hilnet.agent.cla.serial_sim's UART model (byte pacing
at the baud, 10 bits per byte, one-way delay), in virtual time. A bulk backlog (a new bulk
bundle queued as one finishes) keeps the line busy all run long; a 400 B expedited bundle (a tweet) is submitted every few
seconds. Latency is from submission to the whole bundle received at the far end.

The baseline, measured in the same run on the same load: classes ignored (every bundle
at the same rank, so the line goes first come, first served), as before classes of
service. The figure of merit is baseline median / expedited median (the issue's target:
at least 20x at 115200 baud).

    python benchmarks/cos_latency.py [--baud 115200] [--delay 255ms] [--bulk 240KiB] [--tweets 30]
"""

from __future__ import annotations

import argparse
import random
import time
from statistics import median

from hilnet.agent.cla.serial_proto import SerialConfig
from hilnet.agent.cla.serial_sim import SimLink
from hilnet.bundle.cos import Priority, rank_of
from hilnet.units import parse_duration, parse_size

NS_PER_S = 1_000_000_000


def run(
    baud: int, delay_ns: int, bulk_size: int, backlog: int, tweets: int, every_ns: int, classes: bool, seed: int
) -> list[int]:
    """Latencies (ns) of the expedited bundles; ``classes=False`` sends them at bulk rank.

    The bulk load is kept at ``backlog`` bundles queued or in flight: a new one is
    queued as one finishes, so the line never idles and the backlog does not grow.
    """
    rng = random.Random(seed)
    a = SerialConfig("ipn:2.0", baud, delay_ns=delay_ns)
    b = SerialConfig("ipn:3.0", baud, delay_ns=delay_ns)
    link = SimLink(a, b, delay_ns=delay_ns, seed=seed)
    link.run(10 * NS_PER_S, stop=lambda: link.a.session.up and link.b.session.up)
    sender = link.a.session
    bulk_rank = rank_of(Priority.BULK)
    tweet_rank = rank_of(Priority.EXPEDITED) if classes else bulk_rank
    n_bulk = 0
    submitted: dict[bytes, int] = {}
    arrived: dict[bytes, int] = {}
    seen = 0

    def note_arrivals() -> bool:
        """Record each tweet's arrival at the step it happened; True once all are in."""
        nonlocal seen
        got = link.b.received
        while seen < len(got):
            if got[seen] in submitted:
                arrived[got[seen]] = link.now_ns
            seen += 1
        return len(arrived) == tweets

    def top_up() -> None:
        nonlocal n_bulk
        while sum(1 for k in sender.sender.by_id if str(k).startswith("bulk")) < backlog:
            sender.send_bundle(f"bulk{n_bulk}", rng.randbytes(bulk_size), bulk_rank)
            n_bulk += 1

    step = 50 * NS_PER_S // 1000  # the load is topped up this often (virtual time)
    next_tweet = link.now_ns + every_ns // 2
    deadline = next_tweet + tweets * every_ns + 600 * NS_PER_S
    while link.now_ns < deadline and not note_arrivals():
        if len(submitted) < tweets and link.now_ns >= next_tweet:
            tweet = rng.randbytes(400)
            submitted[tweet] = link.now_ns
            sender.send_bundle(f"tweet{len(submitted)}", tweet, tweet_rank)
            next_tweet += every_ns
        top_up()
        link.run(link.now_ns + step, stop=lambda: note_arrivals() and False)
    if len(arrived) != tweets:
        raise SystemExit(f"only {len(arrived)} of {tweets} tweets arrived")
    return [arrived[k] - submitted[k] for k in submitted]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--delay", default="255ms", help="one-way propagation delay")
    p.add_argument("--bulk", default="240KiB", help="size of each bulk bundle")
    p.add_argument("--backlog", type=int, default=2, help="bulk bundles kept queued or in flight")
    p.add_argument("--tweets", type=int, default=30)
    p.add_argument("--every", default="7s", help="time between expedited bundles")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    delay, bulk, every = parse_duration(args.delay), parse_size(args.bulk), parse_duration(args.every)
    print(
        f"expedited latency under saturating bulk load, serial CLA, virtual time: {args.baud} baud 8N1, "
        f"one-way delay {delay / 1e6:g} ms, bulk bundles of {bulk} B, {args.backlog} always queued, "
        f"{args.tweets} expedited bundles of 400 B every {every / 1e9:g} s, seed {args.seed}"
    )
    print(f"{'run':<26} {'median ms':>10} {'p90 ms':>10} {'max ms':>10} {'real s':>7}")
    results = {}
    for name, classes in (("baseline: classes ignored", False), ("classes of service", True)):
        t0 = time.perf_counter()
        lat = sorted(run(args.baud, delay, bulk, args.backlog, args.tweets, every, classes, args.seed))
        results[name] = lat
        p90 = lat[min(len(lat) - 1, int(0.9 * len(lat)))]
        print(
            f"{name:<26} {median(lat) / 1e6:>10.1f} {p90 / 1e6:>10.1f} {lat[-1] / 1e6:>10.1f} "
            f"{time.perf_counter() - t0:>7.1f}"
        )
    ratio = median(results["baseline: classes ignored"]) / median(results["classes of service"])
    print(f"median expedited latency: {ratio:.1f}x lower with classes of service (target >= 20x)")


if __name__ == "__main__":
    main()
