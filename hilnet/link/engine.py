"""The link engine: one timing thread, one epoll, any number of emulated links.

Each link joins two endpoints (hilnet.link.endpoints) through two shaper
directions (hilnet.link.shaper.Direction, sans-I/O). The loop:

1. hands every direction whose ``next_wake_ns()`` has come ``now`` and
   writes what it releases to the far endpoint;
2. waits on the endpoints' descriptors until a guard time (default 200 us)
   before the next deadline, then spins with zero-timeout polls, because
   kernel timers (and asyncio's) wake up to about a millisecond late;
3. reads what arrived, stamped as early as possible (kernel SO_TIMESTAMPNS
   stamps where the socket offers them), and accepts it into the direction.

Times are integer ns of the injected clock. With the host's MonotonicClock
the loop waits in epoll; with any other clock (a VirtualClock in tests) it
never waits on real time: a test moves the clock and calls :meth:`Engine.run_once`.

The timing thread does no other I/O. Other threads reach it only through the
command queue (hilnet.link.control), so LinkHandle methods may be called from
anywhere; what it reports (events, pcap records) goes through the outbox
(hilnet.link.outbox), whose own thread calls the ``on_event`` listener. A link
whose endpoint fails (port unplugged, veth deleted) or whose input trips a bug
is reported and stopped; the other links keep running. A listener that raises
ends the run: the engine stops, and :meth:`Engine.check` and every handle
raise a LinkError naming the cause.

Events are plain dicts: ``{"event": "up"|"down"|"change"|"drop"|..., "link":
NAME, "direction": "a->b", ...}`` as the shaper reports them, plus the
engine's own ``endpoint-error``, ``link-stopped`` and ``engine-warning``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import EndpointError, LinkError
from hilnet.link.control import Command, CommandQueue
from hilnet.link.endpoints.base import Endpoint, Rx, Stamper
from hilnet.link.links import (
    Link,
    LinkHandle,
    Side,
    count_oversize,
    end_name,
    make_link,
    open_ends,
    schedule_scripts,
)
from hilnet.link.outbox import EventCallback, Outbox
from hilnet.link.poller import Poller

if TYPE_CHECKING:
    from hilnet.link.capture import LinkCapture
    from hilnet.link.shaper import DirectionConfig, ScheduleEvent

GUARD_NS = 200_000
MAX_SLICE_MS = 50  # 0.1 % slack of 50 ms = 50 us, well inside the guard
IDLE_WAIT_S = 0.5  # nothing scheduled: wake at least this often (stop() also wakes us)


class Engine:
    """Runs links. ``Engine(clock).add_link(...)`` then ``start()``, ``stop()``, ``join()``."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        on_event: EventCallback | None = None,
        guard_ns: int = GUARD_NS,
        realtime_priority: int | None = None,
    ):
        """``realtime_priority`` (1..99) runs the loop thread SCHED_FIFO when allowed
        (root or CAP_SYS_NICE), so other processes on a busy host cannot preempt it
        near a deadline; without the privilege an ``engine-warning`` event says so."""
        self.clock = clock or MonotonicClock()
        self.realtime_priority = realtime_priority
        self.real_time = isinstance(self.clock, MonotonicClock)
        self.guard_ns = guard_ns
        self._outbox = Outbox(on_event, on_failure=self.stop)
        self._commands = CommandQueue()
        self._stamper = Stamper(enabled=self.real_time)
        self._poller = Poller(self._commands.wake_fd)
        self._links: list[Link] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def failure(self) -> LinkError | None:
        """Why the run broke (the event listener raised), or None. Thread-safe."""
        return self._outbox.failure

    def check(self) -> None:
        """Raise :attr:`failure` if there is one. Thread-safe."""
        self._outbox.check()

    # --- setting up ---------------------------------------------------------
    def add_link(
        self,
        name: str,
        a: str | Endpoint,
        b: str | Endpoint,
        *,
        ab: DirectionConfig | None = None,
        ba: DirectionConfig | None = None,
        seed: int = 0,
        schedule_ab: Iterable[ScheduleEvent] = (),
        schedule_ba: Iterable[ScheduleEvent] = (),
        capture_dir: str | None = None,
    ) -> LinkHandle:
        """Open both endpoints and join them; returns the link's handle.

        ``ab``/``ba`` are the DirectionConfig of each direction (``ba``
        defaults to ``ab``); ``schedule_*`` are ScheduleEvents; ``capture_dir``
        writes one pcap per end. Raises SpecError for endpoints that cannot be
        joined and EndpointError when one cannot be opened. Thread-safe.
        """
        ea, eb, capture = open_ends(name, a, b, capture_dir)
        for ep in (ea, eb):
            ep.bind_clock(self._stamper)
        link = make_link(name, ea, eb, capture, ab, ba, seed, schedule_ab, schedule_ba)
        for side in link.sides:
            side.direction.on_event(self._shaper_event_cb(link, side))
        self._commands.post(partial(self._links.append, link))
        return LinkHandle(link, self._commands, self._outbox, self.clock)

    def _shaper_event_cb(self, link: Link, side: Side) -> Callable[[dict[str, Any]], None]:
        def cb(ev: dict[str, Any]) -> None:
            link.dirty = True  # a gate change may resume or pause reading
            self._outbox.emit({**ev, "link": link.name, "direction": side.name})

        return cb

    def begin(self, t0_ns: int) -> None:
        """The run starts at ``t0_ns`` (engine clock): the scripts given to :meth:`LinkHandle.arm` go
        into their links, their initial state at once, in one command. Thread-safe; call it ahead of ``t0_ns``."""
        self._commands.post(partial(schedule_scripts, self._links, t0_ns, self.clock))

    # --- running ------------------------------------------------------------
    def start(self) -> None:
        """Run the loop in its own (daemon) thread, and the outbox in another."""
        if self._thread is not None:
            raise LinkError("engine already started")
        self._thread = threading.Thread(target=self._run, name="hilnet-link-engine", daemon=True)
        self._commands.loop_started(self._thread, self._outbox.start())
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to finish; endpoints are closed when it does. Thread-safe."""
        self._stop.set()
        self._commands.wake()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the loop to finish and the outbox to hand out its last events."""
        if self._thread is not None:
            self._thread.join(timeout)
            self._outbox.join(timeout)

    def close(self) -> None:
        """Stop every link and release the endpoints (the loop must not be running)."""
        if self._closed:
            return
        self._closed = True
        self._run_commands()
        for link in self._links:
            self._stop_link(link, None)
        self._poller.close()
        self._commands.close()
        if self._thread is None:
            self._outbox.deliver()

    def _run(self) -> None:
        if self.realtime_priority is not None:
            try:
                # pid 0 is the calling thread on Linux: only the loop gets the priority
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
            except (OSError, AttributeError) as e:
                why = f"cannot run the loop with real-time priority: {e}"
                self._outbox.emit({"event": "engine-warning", "t_ns": self.clock.now_ns(), "warning": why})
        try:
            while not self._stop.is_set():
                self._pass()
        finally:
            self._commands.loop_finished()
            try:
                self.close()
            finally:
                self._outbox.finish()

    def run_once(self) -> None:
        """One pass: deliver what is due, wait (or spin) for input, read it.

        For an engine driven by hand (not started): the outbox is delivered on
        the caller's thread at the end, and a failed listener raises here."""
        self._pass()
        if self._thread is None:
            self._outbox.deliver()
            self._outbox.check()

    def _pass(self) -> None:
        clock = self.clock
        self._run_commands()
        now = clock.now_ns()
        deadline = self._deliver_due(now)
        for link in self._links:
            if link.dirty and link.alive:
                self._poller.sync(link)
        if not self.real_time:
            timeout = 0.0
        elif deadline is None:
            timeout = IDLE_WAIT_S
        else:
            # epoll counts whole milliseconds and Python rounds up: wait only the
            # whole ms that fit before the guard, then spin through the rest. The
            # kernel lets a wait overrun by 0.1 % of its length (timer slack), so
            # long waits are cut into slices of at most MAX_SLICE_MS.
            wait_ms = (deadline - clock.now_ns() - self.guard_ns) // 1_000_000
            timeout = min(wait_ms, MAX_SLICE_MS) / 1000 if wait_ms > 0 else 0.0
        events = self._poller.poll(timeout)
        if events:
            self._read(events, clock.now_ns())

    def _read(self, events: list[tuple[int, int]], now: int) -> None:
        for fd, mask in events:
            if fd == self._commands.wake_fd:
                self._commands.woken()
                continue
            link = self._poller.link_of(fd)
            if link is None or not link.alive:
                continue
            ep = link.owner.get(fd)
            if ep is None:
                continue
            try:
                rx = ep.on_ready(fd, mask, now)
                if rx:
                    side = link.ab if ep is link.a else link.ba
                    self._accept(link, side, rx, now)
            except Exception as e:  # noqa: BLE001 - one link's failure must not stop the others
                self._fail(link, e, ep)
            link.dirty = True

    # --- inside the loop ----------------------------------------------------
    def _deliver_due(self, now: int) -> int | None:
        """Deliver due units on every link; returns the earliest next deadline."""
        earliest = None
        for link in self._links:
            if not link.alive:
                continue
            try:
                for side in link.sides:
                    nw = side.direction.next_wake_ns()
                    while nw is not None and nw <= now:
                        self._pop(link, side, now)
                        nw = side.direction.next_wake_ns()
                    if nw is not None and (earliest is None or nw < earliest):
                        earliest = nw
            except Exception as e:  # noqa: BLE001
                self._fail(link, e, None)
        return earliest

    def _pop(self, link: Link, side: Side, now: int) -> None:
        units = side.direction.pop_due(now)
        if not units:
            link.dirty = True  # a gate or config change: reading may resume or pause
            return
        dst = side.dst
        capturing = link.capture is not None
        back: list[Rx] = []
        for u in units:
            if capturing:
                self._capture(link, side.dst_end, "out", u.data, u.tag, now)
            r = dst.send(u.data, u.tag, now)
            if r:
                back.extend(r)
        if back:
            self._accept(link, link.ba if side is link.ab else link.ab, back, now)
        link.dirty = True

    def _accept(self, link: Link, side: Side, rx: list[Rx], now: int) -> None:
        direction = side.direction
        limit = side.dst.max_unit
        capturing = link.capture is not None
        for data, t, tag in rx:
            if capturing:
                self._capture(link, side.src_end, "in", data, tag, t)
            if len(data) > limit:
                self._oversize(link, side, len(data), t)
                continue
            direction.accept(data, t, tag)
        nw = direction.next_wake_ns()
        if nw is not None and nw <= now:
            self._pop(link, side, now)

    def _oversize(self, link: Link, side: Side, size: int, t: int) -> None:
        self._outbox.emit(count_oversize(link, side, size, t))

    def _capture(self, link: Link, end: str, way: str, data: bytes, tag: object, t: int) -> None:
        # The pcap is written on the outbox's thread; a write that fails there
        # comes back as a command, and stops the link as if it had failed here.
        cap = link.capture
        if cap is None:
            return

        def record() -> None:
            try:
                cap.record(end, way, data, tag, t)
            except Exception as e:  # noqa: BLE001 - handed to the loop, which stops this link
                self._commands.post(partial(_reraise, e), link)

        self._outbox.call(record)

    def _fail(self, link: Link, exc: BaseException, ep: Endpoint | None) -> None:
        if isinstance(exc, EndpointError):
            reason = str(exc)
        else:
            reason = f"internal error: {type(exc).__name__}: {exc}"
        self._outbox.emit(
            {
                "event": "endpoint-error",
                "link": link.name,
                "end": end_name(link, ep),
                "t_ns": self.clock.now_ns(),
                "error": reason,
            }
        )
        self._stop_link(link, reason)

    def _stop_link(self, link: Link, reason: str | None) -> None:
        if not link.alive:
            return
        link.alive = False
        self._poller.forget(link)
        for ep in (link.a, link.b):
            try:
                ep.close()
            except Exception:  # noqa: BLE001 - closing a vanished port may fail; it is gone anyway
                pass
        if link.capture is not None:
            self._outbox.call(partial(_close_capture, link.capture))
        self._outbox.emit({"event": "link-stopped", "link": link.name, "t_ns": self.clock.now_ns(), "error": reason})
        self._outbox.call(partial(_mark_stopped, link, reason))  # handles see it after the event is out

    # --- across threads -----------------------------------------------------
    def _run_commands(self) -> None:
        for cmd in self._commands.take():
            if cmd.answer is not None:
                self._answer(cmd)
                continue
            link = cmd.link
            if link is not None and not link.alive:
                continue
            try:
                cmd.fn()
            except Exception as e:  # noqa: BLE001
                if link is None:
                    raise
                self._fail(link, e, None)
            if link is not None:
                link.dirty = True

    def _answer(self, cmd: Command) -> None:
        answer = cmd.answer
        if answer is None:
            return
        try:
            job = partial(answer.set_result, cmd.fn())
        except Exception as e:  # noqa: BLE001 - the asker gets it, not the loop
            job = partial(answer.set_exception, e)
        if cmd.answer_now:
            job()
        else:
            self._outbox.call(job)  # behind the events emitted so far


def _reraise(e: Exception) -> None:
    raise e


def _close_capture(capture: LinkCapture) -> None:
    try:
        capture.close()
    except Exception:  # noqa: BLE001 - the link is gone; a pcap that will not close is all that is lost
        pass


def _mark_stopped(link: Link, reason: str | None) -> None:
    link.state.error = reason
    link.state.alive = False  # last: whoever sees it dead also sees why
