"""Clocks, injected everywhere below the CLI.

Nothing in hilnet calls ``time.monotonic()`` or ``time.sleep()`` directly; it
asks a :class:`Clock`. Tests use :class:`VirtualClock`, whose sleeps jump time
forward at once, so timing logic is tested in milliseconds of real time.

All times are integer nanoseconds. A clock's epoch is its own: only
differences between readings of the same clock mean anything. Clocks tell
wall time; scenario time is wall time since a run's start converted at the
scenario's scale by :func:`hilnet.units.scenario_to_wall_ns` and its inverse.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import Protocol, runtime_checkable

NS_PER_S = 1_000_000_000


def _asyncio() -> ModuleType:
    # Imported on first use: asyncio costs ~15 ms to import, and processes that
    # only need a clock (the offload helper run once per veth, the link
    # emulator's endpoints) never wait on an event loop.
    import asyncio

    return asyncio


def realtime_ns() -> int:
    """Unix time now, ns (the wall clock, which NTP may step): for bundle creation and expiry."""
    return time.time_ns()


@runtime_checkable
class Clock(Protocol):
    """A source of time in integer nanoseconds that can also wait."""

    def now_ns(self) -> int:
        """Current time, ns."""
        ...

    def sleep_until_ns(self, deadline_ns: int) -> None:
        """Block until ``now_ns() >= deadline_ns`` (returns at once if it already is)."""
        ...

    async def wait_until_ns(self, deadline_ns: int) -> None:
        """Like :meth:`sleep_until_ns`, for asyncio code."""
        ...


@runtime_checkable
class WallClock(Clock, Protocol):
    """A :class:`Clock` that can also tell the date: for names and stamps, never for timing."""

    def wall_ns(self) -> int:
        """The calendar time, ns since the Unix epoch (UTC); it may jump when the host's clock is set."""
        ...


class MonotonicClock:
    """The host's monotonic clock (``time.monotonic_ns``); never jumps with NTP.

    ``wall_ns()`` reads the host's calendar clock (``time.time_ns``) for run
    folder names and the like; timing never uses it.
    """

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return realtime_ns()

    def sleep_ns(self, duration_ns: int) -> None:
        self.sleep_until_ns(self.now_ns() + duration_ns)

    def sleep_until_ns(self, deadline_ns: int) -> None:
        while True:
            left = deadline_ns - time.monotonic_ns()
            if left <= 0:
                return
            time.sleep(left / NS_PER_S)

    async def wait_until_ns(self, deadline_ns: int) -> None:
        while True:
            left = deadline_ns - time.monotonic_ns()
            if left <= 0:
                return
            await _asyncio().sleep(left / NS_PER_S)

    @staticmethod
    def realtime_offset_ns() -> int:
        """CLOCK_REALTIME minus this clock, ns: the tightest of a few bracketed readings.

        Moves kernel receive stamps and pcap times between the two clocks."""
        best: tuple[int, int] | None = None
        for _ in range(5):
            m0 = time.monotonic_ns()
            r = time.time_ns()
            m1 = time.monotonic_ns()
            if best is None or m1 - m0 < best[0]:
                best = (m1 - m0, r - (m0 + m1) // 2)
        return best[1] if best is not None else 0


class VirtualClock:
    """A clock that moves only when told to; for tests.

    ``advance()`` and ``set()`` move it by hand. Sleeping jumps straight to the
    deadline ("autojump", like trio's ``MockClock(autojump_threshold=0)``), so a
    test that sleeps through an hour-long contact window takes no real time.
    Thread-safe, so a driver thread and a test can share it. Its calendar
    time (``wall_ns()``) is ``wall_start_ns`` plus the time it has moved.
    """

    def __init__(self, start_ns: int = 0, wall_start_ns: int = 0):
        self._now = start_ns
        self._start = start_ns
        self._wall_start = wall_start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self._now

    def wall_ns(self) -> int:
        return self._wall_start + self._now - self._start

    def advance(self, delta_ns: int) -> int:
        """Move forward by ``delta_ns`` (>= 0); returns the new time."""
        if delta_ns < 0:
            raise ValueError("a virtual clock never goes backwards")
        with self._lock:
            self._now += delta_ns
            return self._now

    def set(self, t_ns: int) -> None:
        """Move forward to ``t_ns``; moving backwards is a bug in the test."""
        with self._lock:
            if t_ns < self._now:
                raise ValueError(f"a virtual clock never goes backwards ({t_ns} < {self._now})")
            self._now = t_ns

    def sleep_ns(self, duration_ns: int) -> None:
        self.sleep_until_ns(self._now + duration_ns)

    def sleep_until_ns(self, deadline_ns: int) -> None:
        with self._lock:
            if deadline_ns > self._now:
                self._now = deadline_ns

    async def wait_until_ns(self, deadline_ns: int) -> None:
        self.sleep_until_ns(deadline_ns)
        await _asyncio().sleep(0)  # let other tasks run, as a real wait would
