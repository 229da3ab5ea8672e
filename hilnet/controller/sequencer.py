"""Replay a plan's timeline on a :class:`~hilnet.clock.Clock`: injections and faults at their instants.

The sequencer owns *when*; a :class:`Target` owns *what* (agents, the event
log). It waits on the injected clock for each action's wall time (``t0`` plus
the action's ``wall_ns``), hands it to the target, and after the last action
waits for the scenario's end or, earlier, for the target to say every bundle
is settled. Link windows, changes, cuts and bursts are the emulator's (it has
the whole script in advance); the sequencer only records cuts and bursts as
the controller's events at their planned instant.

On a :class:`~hilnet.clock.VirtualClock` a whole plan replays in
milliseconds: every wait jumps straight to its deadline.
"""

from __future__ import annotations

import threading
from typing import Protocol

from hilnet.clock import Clock
from hilnet.scenario.actions import (
    Action,
    BurstEnd,
    BurstStart,
    CrashAgent,
    CutLink,
    InjectBundle,
    PowerOff,
    PowerOn,
    RestartAgent,
    RestoreLink,
)
from hilnet.scenario.plan import Plan
from hilnet.units import scenario_to_wall_ns

# How often the sequencer looks up from a wait: health checks, the settle
# test and a stop request are noticed within this much wall time.
POLL_NS = 50_000_000


class Target(Protocol):
    """What the sequencer drives: the testbed's agents and the run's record."""

    def inject(self, action: InjectBundle) -> None:
        """Put the action's bundle in at its source node now (may answer later)."""
        ...

    def crash(self, node: str) -> None:
        """``kill -9`` the node's agent now."""
        ...

    def restart(self, node: str) -> None:
        """Start the node's agent again on its store and configure it; returns when it is up."""
        ...

    def power_cut(self, node: str) -> None:
        """Switch off the board that plays ``node`` (a bench with power commands)."""
        ...

    def power_on(self, node: str) -> None:
        """Switch it on again and restart its agent once the board answers; returns when it is up."""
        ...

    def note(self, kind: str, wall_abs: int | None = None, **fields: object) -> None:
        """Record a controller event at clock time ``wall_abs`` (None: now)."""
        ...

    def check_health(self) -> None:
        """Raise :class:`~hilnet.errors.TestbedError` if the testbed broke."""
        ...

    def settled(self) -> bool:
        """Every bundle injected and delivered (or expired), no copy left in a store, every agent running."""
        ...


class Sequencer:
    """One replay of ``plan`` starting at clock time ``t0_ns``. :meth:`run` does it."""

    def __init__(self, clock: Clock, plan: Plan, t0_ns: int, target: Target, *, until_settled: bool = True):
        self.clock = clock
        self.plan = plan
        self.t0_ns = t0_ns
        self.target = target
        self.until_settled = until_settled
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask :meth:`run` (on another thread) to end at its next look up ("interrupted")."""
        self._stop.set()

    def run(self) -> str:
        """Replay the plan; returns why it ended: settled, duration or interrupted.

        A broken testbed raises (TestbedError from the target's health check).
        """
        for action in self.plan.actions:
            if not isinstance(action, REPLAYED):
                continue  # link windows and changes: the emulator applies them
            at = self.t0_ns + action.wall_ns
            if not self._sleep_until(at):
                return "interrupted"
            self._apply(action, at)
        end = self.t0_ns + scenario_to_wall_ns(self.plan.duration_ns, self.plan.scale)
        while self.clock.now_ns() < end:
            if self.until_settled and self.target.settled():
                return "settled"
            if not self._sleep_until(min(end, self.clock.now_ns() + POLL_NS)):
                return "interrupted"
        return "duration"

    def _apply(self, action: Action, at: int) -> None:
        target = self.target
        if isinstance(action, InjectBundle):
            target.inject(action)
        elif isinstance(action, CrashAgent):
            target.crash(action.node)
            target.note("crash", node=action.node)
        elif isinstance(action, RestartAgent):
            target.restart(action.node)
            target.note("restart", node=action.node)
        elif isinstance(action, PowerOff):
            target.note("power-cut", node=action.node, for_ns=action.for_ns)
            target.power_cut(action.node)
        elif isinstance(action, PowerOn):
            target.power_on(action.node)
            target.note("power-on", node=action.node)
        elif isinstance(action, BurstStart):
            target.note(action.kind, at, link=action.link, ber=action.ber)
        else:  # cut, restore, burst end: the emulator applies them; the record says when
            target.note(action.kind, at, link=action.subject)

    def _sleep_until(self, wall_abs: int) -> bool:
        """Wait until clock time ``wall_abs``, checking health on the way; False if stopped meanwhile."""
        while True:
            if self._stop.is_set():
                return False
            now = self.clock.now_ns()
            if now >= wall_abs:
                return True
            self.clock.sleep_until_ns(min(wall_abs, now + POLL_NS))
            self.target.check_health()


# The actions the sequencer carries out (or records) itself.
REPLAYED = (InjectBundle, CrashAgent, RestartAgent, PowerOff, PowerOn, CutLink, RestoreLink, BurstStart, BurstEnd)
