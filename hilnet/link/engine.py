"""The link engine: one thread, one epoll, any number of emulated links.

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

Other threads talk to the loop only through a queue and a wake-up eventfd:
:class:`LinkHandle` methods may be called from anywhere. A link whose endpoint
fails (port unplugged, veth deleted) or whose input trips a bug is reported
through the event callback and stopped; the other links keep running.

Events (plain dicts, to the ``on_event`` callback, on the engine thread):
``{"event": "link-up"|"link-down"|"link-change"|"drop"|..., "link": NAME,
"direction": "a->b", ...}`` as the shaper reports them, plus the engine's own
``endpoint-error`` and ``link-stopped``.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import select
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import EndpointError, LinkError, SpecError
from hilnet.link.endpoints import open_endpoint
from hilnet.link.endpoints.base import READ, STREAM, Endpoint, Rx, Stamper

GUARD_NS = 200_000
MAX_SLICE_MS = 50  # 0.1 % slack of 50 ms = 50 us, well inside the guard
IDLE_WAIT_S = 0.5  # nothing scheduled: wake at least this often (stop() also wakes us)
STREAM_HIGH_BYTES = 1 << 20  # stream bytes in flight per direction before reading pauses

EventCallback = Callable[[dict], None]


def _shaper():
    # Imported on first use so that endpoints and the CLI's --help stay light.
    from hilnet.link import shaper

    return shaper


@dataclass(slots=True)
class _Side:
    """One direction of a link: where units come from and where they go."""

    name: str
    direction: object  # hilnet.link.shaper.Direction
    src: Endpoint
    dst: Endpoint
    src_end: str  # "a" or "b": the end whose input feeds this direction
    dst_end: str
    reverse: _Side | None = None


class _Link:
    def __init__(self, name: str, a: Endpoint, b: Endpoint, ab: _Side, ba: _Side, capture):
        self.name = name
        self.a = a
        self.b = b
        self.ab = ab
        self.ba = ba
        self.sides = (ab, ba)
        self.capture = capture
        self.alive = True
        self.error: str | None = None
        self.dirty = True
        self.fds: dict[int, int] = {}  # fd -> mask currently registered
        self.owner: dict[int, Endpoint] = {}


class LinkHandle:
    """Thread-safe controls of one link in a running (or not yet started) engine."""

    def __init__(self, engine: Engine, link: _Link):
        self._engine = engine
        self._link = link
        self.name = link.name
        self.a = link.a
        self.b = link.b

    @property
    def alive(self) -> bool:
        """False once the link was stopped (endpoint error or engine stop)."""
        return self._link.alive

    @property
    def error(self) -> str | None:
        """Why the link stopped, if it failed."""
        return self._link.error

    def schedule(self, direction: str, event) -> None:
        """Add a ScheduleEvent to ``direction``: ``"a->b"``, ``"b->a"`` or ``"both"``."""
        sides = self._sides(direction)
        self._engine._call(lambda: [s.direction.schedule(event) for s in sides], self._link)

    def set_up(self, up: bool, at_ns: int | None = None, direction: str = "both") -> None:
        """Open or close the gate at ``at_ns`` (engine clock ns; default: now)."""
        at = self._engine.clock.now_ns() if at_ns is None else at_ns
        self.schedule(direction, _shaper().ScheduleEvent(at_ns=at, up=bool(up)))

    def change(self, at_ns: int | None = None, direction: str = "both", **changes: object) -> None:
        """Change DirectionConfig fields (``rate_bps=2_000_000, delay_ns=...``) at ``at_ns``."""
        at = self._engine.clock.now_ns() if at_ns is None else at_ns
        self.schedule(direction, _shaper().ScheduleEvent(at_ns=at, changes=changes))

    def stats(self) -> dict[str, dict]:
        """Per direction (``"a->b"``, ``"b->a"``): ``units_in``, ``bytes_in``, ``units_out``
        (delivered), ``bytes_out``, ``drops`` and ``drop_bytes`` by reason, ``bits_flipped``,
        ``up``, and gate ``transitions`` as (up, intended_ns, applied_ns)."""
        return {s.name: _side_stats(s) for s in self._link.sides}

    def _sides(self, direction: str) -> list[_Side]:
        link = self._link
        if direction == "both":
            return list(link.sides)
        for s in link.sides:
            if direction == s.name:
                return [s]
        raise LinkError(f"link {link.name}: no direction {direction!r}; expected 'a->b', 'b->a' or 'both'")


def _side_stats(side: _Side) -> dict:
    for _ in range(5):  # the engine thread may be updating the dicts: retry the copy
        try:
            st = side.direction.stats
            drops = {k: v for k, v in st.drops.items() if v}
            if side.dst.overruns:
                drops["overrun"] = side.dst.overruns  # delivered by the shaper, refused by the OS
            return {
                "units_in": st.units_in,
                "bytes_in": st.bytes_in,
                "units_out": st.units_out - side.dst.overruns,
                "bytes_out": st.bytes_out,
                "drops": drops,
                "drop_bytes": {k: v for k, v in st.drop_bytes.items() if v},
                "bits_flipped": st.bits_flipped,
                "up": side.direction.is_up(),
                "transitions": [(t.up, t.intended_ns, t.applied_ns) for t in list(st.transitions)],
            }
        except RuntimeError:
            continue
    raise LinkError("could not read link statistics")


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
        self._on_event = on_event
        self._stamper = Stamper(enabled=self.real_time)
        self._epoll = select.epoll()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake_fd, READ)
        self._fd_link: dict[int, _Link] = {}
        self._links: list[_Link] = []
        self._control: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- setting up ---------------------------------------------------------
    def add_link(
        self,
        name: str,
        a: str | Endpoint,
        b: str | Endpoint,
        *,
        ab=None,
        ba=None,
        seed: int = 0,
        schedule_ab: Iterable = (),
        schedule_ba: Iterable = (),
        capture_dir: str | None = None,
    ) -> LinkHandle:
        """Open both endpoints and join them; returns the link's handle.

        ``ab``/``ba`` are the DirectionConfig of each direction (``ba``
        defaults to ``ab``); ``schedule_*`` are ScheduleEvents; ``capture_dir``
        writes one pcap per end. Raises SpecError for endpoints that cannot be
        joined and EndpointError when one cannot be opened. Thread-safe.
        """
        sh = _shaper()
        ab = ab if ab is not None else sh.DirectionConfig()
        ba = ba if ba is not None else ab
        opened: list[Endpoint] = []  # the ones opened here from specs, closed again on failure
        try:
            if isinstance(a, Endpoint):
                ea = a
            else:
                ea = open_endpoint(a, label=f"{name}.a")
                opened.append(ea)
            if isinstance(b, Endpoint):
                eb = b
            else:
                eb = open_endpoint(b, label=f"{name}.b")
                opened.append(eb)
            if ea.medium != eb.medium:
                raise SpecError(
                    f"link {name}: cannot join {ea.medium.lower()} endpoint {ea.spec.text!r} "
                    f"to {eb.medium.lower()} endpoint {eb.spec.text!r}; both ends must be the same kind"
                )
            medium = sh.Medium[ea.medium]
            ab = _fit_serial(ab, ea, eb)
            ba = _fit_serial(ba, eb, ea)
            for ep in (ea, eb):
                ep.bind_clock(self._stamper)
            capture = None
            if capture_dir is not None:
                from hilnet.link.capture import LinkCapture

                capture = LinkCapture(capture_dir, name, ea, eb)
        except BaseException:
            for ep in opened:
                ep.close()
            raise
        d_ab = sh.Direction(ab, medium, seed=seed * 2, schedule=schedule_ab, name=f"{name}:a->b")
        d_ba = sh.Direction(ba, medium, seed=seed * 2 + 1, schedule=schedule_ba, name=f"{name}:b->a")
        s_ab = _Side("a->b", d_ab, ea, eb, "a", "b")
        s_ba = _Side("b->a", d_ba, eb, ea, "b", "a")
        s_ab.reverse, s_ba.reverse = s_ba, s_ab
        link = _Link(name, ea, eb, s_ab, s_ba, capture)
        for side in link.sides:
            side.direction.on_event(self._shaper_event_cb(link, side))
        self._call(lambda: self._links.append(link), None)
        return LinkHandle(self, link)

    def _shaper_event_cb(self, link: _Link, side: _Side) -> Callable[[dict], None]:
        def cb(ev: dict) -> None:
            link.dirty = True  # a gate change may resume or pause reading
            self._emit({**ev, "link": link.name, "direction": side.name})

        return cb

    # --- running ------------------------------------------------------------
    def start(self) -> None:
        """Run the loop in its own (daemon) thread."""
        if self._thread is not None:
            raise LinkError("engine already started")
        self._thread = threading.Thread(target=self._run, name="hilnet-link-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to finish; endpoints are closed when it does. Thread-safe."""
        self._stop.set()
        self._wake()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop every link and release the endpoints (the loop must not be running)."""
        if self._closed:
            return
        self._closed = True
        self._drain_control()
        for link in self._links:
            self._stop_link(link, None)
        self._epoll.close()
        os.close(self._wake_fd)

    def _run(self) -> None:
        if self.realtime_priority is not None:
            try:
                # pid 0 is the calling thread on Linux: only the loop gets the priority
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
            except (OSError, AttributeError) as e:
                self._emit(
                    {
                        "event": "engine-warning",
                        "t_ns": self.clock.now_ns(),
                        "warning": f"cannot run the loop with real-time priority: {e}",
                    }
                )
        try:
            while not self._stop.is_set():
                self.run_once()
        finally:
            self.close()

    def run_once(self) -> None:
        """One pass: deliver what is due, wait (or spin) for input, read it."""
        clock = self.clock
        self._drain_control()
        now = clock.now_ns()
        deadline = self._deliver_due(now)
        for link in self._links:
            if link.dirty and link.alive:
                self._sync(link)
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
        events = self._epoll.poll(timeout)
        if not events:
            return
        now = clock.now_ns()
        for fd, mask in events:
            if fd == self._wake_fd:
                try:
                    os.eventfd_read(self._wake_fd)
                except BlockingIOError:
                    pass
                continue
            link = self._fd_link.get(fd)
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

    def _pop(self, link: _Link, side: _Side, now: int) -> None:
        units = side.direction.pop_due(now)
        if not units:
            link.dirty = True  # a gate or config change: reading may resume or pause
            return
        dst = side.dst
        cap = link.capture
        back: list[Rx] = []
        for u in units:
            if cap is not None:
                cap.record(side.dst_end, "out", u.data, u.tag, now)
            r = dst.send(u.data, u.tag, now)
            if r:
                back.extend(r)
        if back:
            self._accept(link, side.reverse, back, now)
        link.dirty = True

    def _accept(self, link: _Link, side: _Side, rx: list[Rx], now: int) -> None:
        direction = side.direction
        limit = side.dst.max_unit
        cap = link.capture
        for data, t, tag in rx:
            if cap is not None:
                cap.record(side.src_end, "in", data, tag, t)
            if len(data) > limit:
                self._oversize(link, side, len(data), t)
                continue
            direction.accept(data, t, tag)
        nw = direction.next_wake_ns()
        if nw is not None and nw <= now:
            self._pop(link, side, now)

    def _oversize(self, link: _Link, side: _Side, size: int, t: int) -> None:
        # Counted in the direction's own counters so that in = out + drops + in flight holds.
        st = side.direction.stats
        st.units_in += 1
        st.bytes_in += size
        st.drops["oversize"] = st.drops.get("oversize", 0) + 1
        st.drop_bytes["oversize"] = st.drop_bytes.get("oversize", 0) + size
        self._emit(
            {
                "event": "drop",
                "reason": "oversize",
                "link": link.name,
                "direction": side.name,
                "t_ns": t,
                "bytes": size,
                "limit": side.dst.max_unit,
            }
        )

    def _reading(self, side: _Side) -> bool:
        if side.src.medium != STREAM:
            return True  # frames, datagrams, serial bytes: a down gate drops them
        d = side.direction
        if not d.accepting():
            return False  # outage or full queue: stall; TCP flow control holds the sender
        st = d.stats
        return st.bytes_in - st.bytes_out + side.dst.backlog_bytes() < STREAM_HIGH_BYTES

    def _sync(self, link: _Link) -> None:
        link.dirty = False
        wanted: dict[int, int] = {}
        owner: dict[int, Endpoint] = {}
        for ep in (link.a, link.b):
            for fd in ep.gone_fds:
                # Closed by the endpoint: epoll dropped it already, and the number may
                # be reused by a new socket, so it must not be unregistered by number.
                if link.fds.pop(fd, None) is not None and self._fd_link.get(fd) is link:
                    del self._fd_link[fd]
            ep.gone_fds.clear()
        for side in link.sides:
            ep = side.src
            for fd, mask in ep.interest(self._reading(side)).items():
                wanted[fd] = mask
                owner[fd] = ep
        ep_poll = self._epoll
        for fd in list(link.fds):
            if fd not in wanted:
                del link.fds[fd]
                if self._fd_link.get(fd) is link:
                    del self._fd_link[fd]
                try:
                    ep_poll.unregister(fd)
                except (OSError, ValueError):
                    pass  # already closed: epoll forgot it by itself
        for fd, mask in wanted.items():
            old = link.fds.get(fd)
            if old == mask:
                continue
            try:
                if old is None:
                    ep_poll.register(fd, mask)
                else:
                    ep_poll.modify(fd, mask)
            except FileExistsError:
                ep_poll.modify(fd, mask)
            except FileNotFoundError:
                ep_poll.register(fd, mask)
            link.fds[fd] = mask
            self._fd_link[fd] = link
        link.owner = owner

    def _fail(self, link: _Link, exc: BaseException, ep: Endpoint | None) -> None:
        if isinstance(exc, EndpointError):
            reason = str(exc)
        else:
            reason = f"internal error: {type(exc).__name__}: {exc}"
        self._emit(
            {
                "event": "endpoint-error",
                "link": link.name,
                "end": _end_name(link, ep),
                "t_ns": self.clock.now_ns(),
                "error": reason,
            }
        )
        self._stop_link(link, reason)

    def _stop_link(self, link: _Link, reason: str | None) -> None:
        if not link.alive:
            return
        link.alive = False
        link.error = reason
        for fd in list(link.fds):
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            self._fd_link.pop(fd, None)
        link.fds.clear()
        for ep in (link.a, link.b):
            try:
                ep.close()
            except Exception:  # noqa: BLE001 - closing a vanished port may fail; it is gone anyway
                pass
        if link.capture is not None:
            link.capture.close()
        self._emit({"event": "link-stopped", "link": link.name, "t_ns": self.clock.now_ns(), "error": reason})

    # --- across threads -----------------------------------------------------
    def _call(self, fn: Callable[[], object], link: _Link | None) -> None:
        self._control.put((fn, link))
        self._wake()

    def _wake(self) -> None:
        try:
            os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass  # closed: the engine has stopped

    def _drain_control(self) -> None:
        while True:
            try:
                fn, link = self._control.get_nowait()
            except queue.Empty:
                return
            if link is not None and not link.alive:
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                if link is None:
                    raise
                self._fail(link, e, None)
            if link is not None:
                link.dirty = True

    def _emit(self, ev: dict) -> None:
        if self._on_event is not None:
            try:
                self._on_event(ev)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the links
                pass


def _end_name(link: _Link, ep: Endpoint | None) -> str | None:
    if ep is link.a:
        return "a"
    if ep is link.b:
        return "b"
    return None


def _fit_serial(cfg, src: Endpoint, dst: Endpoint):
    """Give a serial direction the line speed of a UART endpoint when none was set."""
    if src.medium != "SERIAL" or cfg.baud is not None:
        return cfg
    for ep in (src, dst):
        if ep.baud:
            return dataclasses.replace(cfg, baud=ep.baud, bits_per_byte=ep.bits_per_byte or cfg.bits_per_byte)
    return cfg
