"""One emulated link run alone (``hilnet link``): until a duration passes or Ctrl-C.

:func:`run_link` runs a :class:`LinkSetup` on a link engine, shows a live
line per direction (redrawn in place on a terminal), and returns the final
counters as a JSON-ready dict. Scripted times in the setup count from the
moment the link starts. The terminal is written from the caller's thread,
never from the engine's.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TextIO

from hilnet.clock import Clock, MonotonicClock
from hilnet.units import format_size

if TYPE_CHECKING:
    from hilnet.link.links import LinkHandle, Stats
    from hilnet.link.shaper import DirectionConfig, ScheduleEvent

NS_PER_S = 1_000_000_000
TICK_NS = 50_000_000  # how often the loop looks at the link, the clock and the stop flag


@dataclass(frozen=True)
class LinkSetup:
    """Everything a standalone link needs; times in the schedules are offsets from start, ns."""

    name: str
    a: str  # endpoint specs
    b: str
    ab: DirectionConfig
    ba: DirectionConfig
    schedule_ab: tuple[ScheduleEvent, ...] = ()
    schedule_ba: tuple[ScheduleEvent, ...] = ()
    seed: int = 0
    offsets: bool = True  # schedule times are relative to the start (False: absolute engine ns)
    notes: tuple[str, ...] = field(default=())


def describe(stats: dict[str, Any]) -> str:
    """One status line for a direction's counters."""
    drops = " ".join(f"{k}={v}" for k, v in sorted(stats["drops"].items())) or "none"
    return (
        f"{'up  ' if stats['up'] else 'DOWN'} in {stats['units_in']} units/{format_size(stats['bytes_in'])} "
        f"out {stats['units_out']}/{format_size(stats['bytes_out'])} drops {drops}"
    )


class LiveView:
    """The live lines of a running link: one per direction, redrawn in place on a terminal."""

    def __init__(self, out: TextIO):
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self._printed = False

    def show(self, stats: Stats) -> None:
        lines = [f"{name}  {describe(st)}" for name, st in stats.items()]
        if self.tty and self._printed:
            self.out.write("\x1b[2A")  # redraw the two lines in place
        for line in lines:
            self.out.write(("\x1b[2K" if self.tty else "") + line + "\n")
        self.out.flush()
        self._printed = True

    def warn(self, events: queue.SimpleQueue[dict[str, Any]]) -> None:
        """Print the engine's warnings among ``events`` (the other events are counted in the stats)."""
        while True:
            try:
                ev = events.get_nowait()
            except queue.Empty:
                return
            if ev.get("event") == "engine-warning":
                print(f"warning: {ev['warning']}", file=self.out, flush=True)


def run_link(
    setup: LinkSetup,
    *,
    duration_ns: int | None = None,
    pcap: str | None = None,
    out: TextIO | None = None,
    live_interval_s: float = 1.0,
    clock: Clock | None = None,
    stop_flag: Callable[[], bool] | None = None,
    realtime: bool = False,
) -> dict[str, Any]:
    """Run the link until ``duration_ns`` passes (None: until KeyboardInterrupt); returns the stats.

    Returns ``{"link", "a", "b", "elapsed_s", "directions": {...}, "transitions": [...],
    "error"}`` (``error``: why an endpoint failed, or None). Raises SpecError or
    EndpointError when the endpoints cannot be opened, and LinkError when the
    run itself broke.
    """
    from hilnet.link.engine import Engine

    clock = clock or MonotonicClock()
    out = out or sys.stdout
    events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    engine = Engine(clock, on_event=events.put, realtime_priority=10 if realtime else None)
    handle = engine.add_link(setup.name, setup.a, setup.b, ab=setup.ab, ba=setup.ba, seed=setup.seed, capture_dir=pcap)
    # The script counts from here, once the endpoints (and a capture's scapy) are open, and the
    # "link ..." line says so at once: a harness that starts agents on that line shares the link's t0.
    t0 = clock.now_ns()
    for direction, script in (("a->b", setup.schedule_ab), ("b->a", setup.schedule_ba)):
        for event in _shifted(script, t0):
            handle.schedule(direction, event)
    for note in setup.notes:
        print(note, file=out)
    print(f"link {setup.name}: a={setup.a} b={setup.b}", file=out, flush=True)
    engine.start()
    end = None if duration_ns is None else t0 + duration_ns
    try:
        _watch(handle, clock, end, LiveView(out), events, int(live_interval_s * NS_PER_S), stop_flag)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        engine.join(5)
    now = clock.now_ns()
    result = _result(setup, handle.stats(), t0, now, handle.error)
    _print_summary(result, out)
    return result


def _watch(
    handle: LinkHandle,
    clock: Clock,
    end: int | None,
    view: LiveView,
    events: queue.SimpleQueue[dict[str, Any]],
    every_ns: int,
    stop_flag: Callable[[], bool] | None,
) -> None:
    next_print = clock.now_ns() + every_ns
    while handle.alive and (end is None or clock.now_ns() < end) and not (stop_flag and stop_flag()):
        now = clock.now_ns()
        clock.sleep_until_ns(now + (TICK_NS if end is None else max(0, min(TICK_NS, end - now))))
        view.warn(events)
        if clock.now_ns() >= next_print:
            next_print += every_ns
            view.show(handle.stats())


def _shifted(events: Iterable[ScheduleEvent], t0: int) -> list[ScheduleEvent]:
    return [replace(ev, at_ns=ev.at_ns + t0) for ev in events]


def _result(setup: LinkSetup, stats: Stats, t0: int, now: int, error: str | None) -> dict[str, Any]:
    directions: dict[str, dict[str, Any]] = {}
    transitions: list[dict[str, Any]] = []
    for name, st in stats.items():
        directions[name] = {
            "units_in": st["units_in"],
            "bytes_in": st["bytes_in"],
            "units_delivered": st["units_out"],
            "bytes_delivered": st["bytes_out"],
            "units_dropped": sum(st["drops"].values()),
            "drops": st["drops"],
            "drop_bytes": st["drop_bytes"],
            "bits_flipped": st["bits_flipped"],
        }
        for up, intended, applied in st["transitions"]:
            transitions.append(
                {
                    "direction": name,
                    "up": up,
                    "intended_s": round((intended - t0) / NS_PER_S, 9),
                    "late_us": round((applied - intended) / 1000, 1),
                }
            )
    return {
        "link": setup.name,
        "a": setup.a,
        "b": setup.b,
        "elapsed_s": round((now - t0) / NS_PER_S, 6),
        "directions": directions,
        "transitions": transitions,
        "error": error,
    }


def _print_summary(result: dict[str, Any], out: TextIO) -> None:
    for name, st in result["directions"].items():
        print(
            f"{name}  in {st['units_in']} units/{format_size(st['bytes_in'])}  delivered {st['units_delivered']}"
            f"/{format_size(st['bytes_delivered'])}  dropped {st['units_dropped']} {st['drops'] or ''}".rstrip(),
            file=out,
        )
