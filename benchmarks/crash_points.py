"""Random ``kill -9`` points across receive, forward, expire and delete: nothing acknowledged lost, nothing twice.

Each trial runs two real agents (``hilnet agent --stdio``) in a fresh folder: a
(``ipn:1.0``) and b (``ipn:2.0``), SQLite stores on disk, TCPCLv4 on 127.0.0.1
(a dials b), no link emulator. Bundles of 1 to 8 KiB go from a to ``ipn:2.0``,
b's own service 0 (what ``hilnet run`` injects to: delivered at once, no
subscriber). One agent is killed with SIGKILL at an instant drawn uniformly from
its phase's window, restarted on the same store and configured again; the trial
then drains (both stores empty) and is judged. The phases, drawn in turn:

- receive: b is killed while bundles stream in from a (commit, final XFER_ACK,
  delivery and its journalled deletion);
- forward: a is killed while it takes injections and sends them;
- expire: a holds bundles of random lifetimes (50 to 1500 ms) while b is not yet
  running, and is killed while they expire; then b starts;
- delete: a holds a backlog, b starts, and a is killed while the acks arrive
  and it deletes what was acknowledged.

Judged from the stores' deletion journals (read with sqlite3 after the trial)
and the agents' events (those written before a kill included):

- acknowledged: a bundle whose ``inject`` reply came back (committed at a);
- lost: acknowledged, yet not delivered at b (journal reason ``delivered``),
  not expired (journal reason ``expired``, or an ``expired`` event), and stored
  nowhere;
- duplicate: b's journal or its ``delivered`` events name a bundle twice;
- stuck: still stored when the drain timed out (counted apart from lost).

Exit status 1 on any loss, duplicate or stuck bundle, else 0. It prints the
configuration, counts per phase and the verdict; ``mid`` counts the kills that
landed while the phase's work was under way (some bundles done, not all), the
ones that test something.

    python benchmarks/crash_points.py [--trials 1000] [--seed 1] [--bundles 40] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from hilnet.agent.protocol import Event, event_json, parse_command
from hilnet.clock import MonotonicClock
from hilnet.errors import AgentError
from hilnet.stacks.agent_process import AgentProcess

MS = 1_000_000
PHASES = ("receive", "forward", "expire", "delete")
LONG_LIFE_NS = 3600_000 * MS
DRAIN_S = 30.0
# The events that mark each phase's progress: (victim, node that reports, event kind).
PROGRESS = {
    "receive": ("b", "b", "stored"),
    "forward": ("a", "a", "acked"),
    "expire": ("a", "a", "expired"),
    "delete": ("a", "b", "delivered"),  # a sends, b delivers, a deletes what b acknowledged
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Trial:
    """Agents a and b of one trial, their events, and the bundles a acknowledged."""

    def __init__(self, folder: str, rng: random.Random, bundles: int):
        self.folder = folder
        self.rng = rng
        self.bundles = bundles
        self.port = free_port()
        self.events: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        self.acknowledged: set[str] = set()
        self.lock = threading.Lock()
        self.agents: dict[str, AgentProcess] = {}

    def _on_event(self, name: str, event: Event) -> None:
        with self.lock:
            self.events[name].append(event_json(event))

    def _on_unreadable(self, name: str, message: str) -> None:
        with self.lock:
            self.events[name].append({"event": "log", "level": "error", "message": message})

    def count(self, name: str, kind: str) -> int:
        with self.lock:
            return sum(1 for e in self.events[name] if e.get("event") == kind)

    def start(self, *names: str) -> None:
        """Start (or restart) the agents ``names`` together and configure each on its store."""
        for name in names:
            proc = self.agents.get(name)
            if proc is None:
                log = os.path.join(self.folder, f"{name}.log")
                proc = AgentProcess(name, (), log, MonotonicClock(), self._on_event, self._on_unreadable)
                self.agents[name] = proc
            proc.start()
        for name in names:
            self.agents[name].wait_ready()
            self.agents[name].call(parse_command(json.dumps(self._configure(name))))

    def _configure(self, name: str) -> dict[str, Any]:
        where = f"127.0.0.1:{self.port}"
        cla = {"type": "tcpcl", "listen": where} if name == "b" else {"type": "tcpcl", "peers": {"ipn:2.0": where}}
        return {
            "cmd": "configure",
            "node": name,
            "eid": "ipn:1.0" if name == "a" else "ipn:2.0",
            "store": {"path": self.store(name)},
            "clas": [cla],
            "routes": {"*": "ipn:2.0"} if name == "a" else {},
        }

    def store(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.sqlite")

    def inject(self, n: int, lifetime: Callable[[], int], gap_s: float = 0.0) -> None:
        """Send ``n`` injects to a, ``gap_s`` apart, without waiting for replies.

        Each reply adds its bundle to ``acknowledged``. A gap spreads the work of a
        phase over many store commits, so a kill can fall between any two of them.
        """

        def replied(result: Any) -> None:
            if isinstance(result, Mapping):  # else an AgentError: not acknowledged
                with self.lock:
                    self.acknowledged.add(str(result["bundle"]))

        for _ in range(n):
            size = self.rng.randint(1024, 8192)
            cmd = {"cmd": "inject", "dest": "ipn:2.0", "size": size, "seed": self.rng.randrange(1 << 30)}
            cmd["lifetime_ns"] = lifetime()
            try:
                self.agents["a"].send(parse_command(json.dumps(cmd)), on_reply=replied)
            except AgentError:  # a was killed: the rest of the burst is not sent
                return
            if gap_s:
                time.sleep(gap_s)

    def wait(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def kill_during(self, victim: str, node: str, kind: str) -> int:
        """SIGKILL ``victim`` at a random point of the phase's work; returns the ``kind`` events of ``node`` by then.

        The point is drawn as a share of the phase's events (``kind`` at ``node``: up to
        110 % of the bundles, so some kills land after the work) plus up to 10 ms more:
        kills spread over the work on a fast machine and on a loaded one alike, where
        a window of wall time would mostly miss a phase that takes 40 ms.
        """
        target = int(self.rng.uniform(0, 1.1) * self.bundles)
        self.wait(lambda: self.count(node, kind) >= min(target, self.bundles), 10)
        if target >= self.bundles:
            time.sleep(self.rng.uniform(0, 0.05))
        time.sleep(self.rng.uniform(0, 0.01))
        done = self.count(node, kind)
        self.agents[victim].kill()
        return done

    def drained(self) -> bool:
        def empty() -> bool:
            return all(
                p.alive() and p.call(parse_command('{"cmd": "status"}'))["stored"] == 0 for p in self.agents.values()
            )

        return self.wait(empty, DRAIN_S)

    def stop(self) -> None:
        for proc in self.agents.values():
            proc.stop(timeout_s=3.0)


# -- the phases: each returns whether its kill landed mid-work ---------------------------------


def phase_receive(t: Trial) -> bool:
    t.start("a", "b")
    t.wait(lambda: t.count("a", "session-up") > 0, 10)
    burst = threading.Thread(target=t.inject, args=(t.bundles, lambda: LONG_LIFE_NS, 0.002), daemon=True)
    burst.start()
    done = t.kill_during(*PROGRESS["receive"])
    t.start("b")
    burst.join()
    return 0 < done < t.bundles


def phase_forward(t: Trial) -> bool:
    t.start("a", "b")
    t.wait(lambda: t.count("a", "session-up") > 0, 10)
    burst = threading.Thread(target=t.inject, args=(t.bundles, lambda: LONG_LIFE_NS, 0.002), daemon=True)
    burst.start()
    done = t.kill_during(*PROGRESS["forward"])
    burst.join()
    t.start("a")
    return 0 < done < t.bundles


def phase_expire(t: Trial) -> bool:
    t.start("a")
    t.inject(t.bundles, lambda: t.rng.randint(50, 1500) * MS)
    t.wait(lambda: len(t.acknowledged) >= t.bundles, 10)
    done = t.kill_during(*PROGRESS["expire"])
    t.start("a")
    t.start("b")
    return 0 < done < t.bundles


def phase_delete(t: Trial) -> bool:
    t.start("a")
    t.inject(t.bundles, lambda: LONG_LIFE_NS)
    t.wait(lambda: len(t.acknowledged) >= t.bundles, 10)
    t.start("b")
    done = t.kill_during(*PROGRESS["delete"])
    t.start("a")
    return 0 < done < t.bundles


PHASE_RUN = {"receive": phase_receive, "forward": phase_forward, "expire": phase_expire, "delete": phase_delete}


# -- judging -------------------------------------------------------------------------------------


def journal(path: str) -> list[tuple[str, str]]:
    """(key, reason) of every deletion an agent's store journalled."""
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT key, reason FROM deleted ORDER BY id"))


def stored(path: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {k for (k,) in db.execute("SELECT key FROM bundle")}


def judge(t: Trial, drained: bool) -> Counter[str]:
    """Counts of one finished trial: acknowledged, delivered, expired, lost, duplicates, stuck."""
    j = {n: journal(t.store(n)) if os.path.exists(t.store(n)) else [] for n in ("a", "b")}
    held = set().union(*(stored(t.store(n)) for n in ("a", "b") if os.path.exists(t.store(n))))
    delivered = Counter(k for k, reason in j["b"] if reason == "delivered")
    told = Counter(e["bundle"] for e in t.events["b"] if e.get("event") == "delivered")
    expired = {k for n in ("a", "b") for k, reason in j[n] if reason == "expired"}
    expired |= {e["bundle"] for n in ("a", "b") for e in t.events[n] if e.get("event") == "expired"}
    c: Counter[str] = Counter(acknowledged=len(t.acknowledged))
    for key in t.acknowledged:
        if delivered[key]:
            c["delivered"] += 1
        elif key in expired:
            c["expired"] += 1
        elif key in held:
            c["stuck"] += 1
        else:
            c["lost"] += 1
    c["duplicates"] = sum(n - 1 for n in delivered.values() if n > 1) + sum(n - 1 for n in told.values() if n > 1)
    if not drained:
        c["undrained"] += 1
    return c


def run_trial(phase: str, rng: random.Random, bundles: int, root: str, keep: bool) -> tuple[Counter[str], bool]:
    folder = tempfile.mkdtemp(prefix=f"{phase}-", dir=root)
    t = Trial(folder, rng, bundles)
    try:
        mid = PHASE_RUN[phase](t)
        drained = t.drained()
    finally:
        t.stop()
    c = judge(t, drained)
    if not keep and not (c["lost"] or c["duplicates"] or c["stuck"]):
        shutil.rmtree(folder, ignore_errors=True)
    elif c["lost"] or c["duplicates"] or c["stuck"]:
        print(f"  {phase} trial in {folder}: {dict(c)}", flush=True)
    return c, mid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000, help="kill -9 points in all (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed: the same seed draws the same kill instants")
    ap.add_argument("--bundles", type=int, default=40, help="bundles per trial (default 40)")
    ap.add_argument("--dir", default=None, help="where trial folders go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep every trial folder, not only failing ones")
    args = ap.parse_args(argv)
    root = args.dir or tempfile.mkdtemp(prefix="crash-points-")
    os.makedirs(root, exist_ok=True)
    rng = random.Random(args.seed)
    print(f"crash points: {args.trials} trials, seed {args.seed}, {args.bundles} bundles of 1-8 KiB per trial")
    print(f"  python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, in {root}")
    print("  kill points: " + ", ".join(f"{p}: {v} at {n}'s {k}" for p, (v, n, k) in PROGRESS.items()), flush=True)
    totals = {p: Counter() for p in PHASES}
    started = time.monotonic()
    for i in range(args.trials):
        phase = PHASES[i % len(PHASES)]
        c, mid = run_trial(phase, rng, args.bundles, root, args.keep)
        totals[phase].update(c + Counter(trials=1, mid=int(mid)))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1} trials, {time.monotonic() - started:.0f} s", flush=True)
    return report(totals, time.monotonic() - started, root if not args.dir else None)


def report(totals: dict[str, Counter[str]], seconds: float, tmp_root: str | None) -> int:
    cols = ("trials", "mid", "acknowledged", "delivered", "expired", "lost", "duplicates", "stuck", "undrained")
    print(f"\n{'phase':<8}" + "".join(f"{c:>13}" for c in cols))
    for phase, c in totals.items():
        print(f"{phase:<8}" + "".join(f"{c[k]:>13}" for k in cols))
    all_ = sum(totals.values(), Counter())
    print(f"{'all':<8}" + "".join(f"{all_[k]:>13}" for k in cols))
    bad = all_["lost"] + all_["duplicates"] + all_["stuck"]
    verdict = "PASS" if not bad else "FAIL"
    print(
        f"\n{verdict}: {all_['lost']} acknowledged bundles lost, {all_['duplicates']} duplicate deliveries, "
        f"{all_['stuck']} stuck, over {all_['trials']} kill -9 points in {seconds:.0f} s"
    )
    if tmp_root and not bad:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
