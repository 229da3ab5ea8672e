"""One direction of an emulated link: the chain of stages and its script.

    accept -> Gate -> Loss -> Corrupt -> Transmitter (queue + serialiser) -> Propagation -> pop_due

Stages that are identity under the current configuration are left out of the
chain (an unimpaired link runs Propagation alone, or nothing at all), which
keeps the common path to a few attribute reads and one tuple per unit.

Time moves only through the ``now_ns`` the engine passes in; inside, the
direction runs every stage wake-up and scripted event at its exact instant,
in order, however late the engine calls. At one instant, units due leave
first, then scripted events apply, then an arriving unit enters: a unit that
arrives at the instant the link goes down is dropped, one that departs then
is not. Events scheduled for a time already past apply at once; their
intended time is kept for the schedule-fidelity record.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from hilnet.link.shaper.corrupt import Corrupt
from hilnet.link.shaper.gate import Gate
from hilnet.link.shaper.loss import Loss
from hilnet.link.shaper.propagation import Propagation
from hilnet.link.shaper.stage import InstantStage
from hilnet.link.shaper.transmitter import Transmitter
from hilnet.link.shaper.types import (
    DirectionConfig,
    DirectionStats,
    GateTransition,
    Medium,
    ScheduleEvent,
    Unit,
)

# Serial bytes are handed on in pieces of at most this, or 1 ms of line time if
# that is more, so that they trickle out at line pace rather than in a lump.
SERIAL_MIN_CHUNK_BYTES = 64

EventFn = Callable[[dict[str, Any]], None]


class Direction:
    """A link direction: accepts units, hands them out when due, follows its schedule.

    ``seed`` makes loss, bit errors and jitter repeatable: the same seed, config,
    schedule and inputs give the same drops, flips and times.
    """

    def __init__(
        self,
        config: DirectionConfig,
        medium: Medium,
        *,
        seed: int,
        schedule: Iterable[ScheduleEvent] = (),
        name: str = "",
    ):
        self.medium = medium
        self.name = name
        self.stats = DirectionStats()
        self._listeners: list[EventFn] = []
        stream = medium is Medium.STREAM
        self._stream = stream
        self._gate = Gate(config.up, stall=stream, drop=self._drop)
        self._loss = Loss(random.Random(f"{seed}:loss"), self._drop)
        self._corrupt = Corrupt(medium, random.Random(f"{seed}:ber"), self._drop, self.stats)
        self._tx = Transmitter(medium, self._drop)
        self._prop = Propagation(random.Random(f"{seed}:jitter"), self._drop, never_reorder=stream)
        self._events: list[tuple[int, int, ScheduleEvent]] = []  # (apply_ns, seq, event)
        self._seq = 0
        self._now: int | None = None  # latest now_ns seen; time never runs backwards inside
        self._out: list[Unit] = []
        self._config = config
        self._filters: tuple[InstantStage, ...] = ()  # the instant stages that are not identity
        self._tx_on = self._prop_on = False  # whether the timed stages do anything
        self._gate_pair: tuple[DirectionConfig, DirectionConfig] | None = None  # see _with_up
        self._chunk = 0
        self._configure(config, 0)
        for event in schedule:
            self.schedule(event)

    # -- public API -------------------------------------------------------------------

    @property
    def config(self) -> DirectionConfig:
        """The configuration in force now."""
        return self._config

    def is_up(self) -> bool:
        return self._config.up

    def on_event(self, callback: EventFn) -> None:
        """Call ``callback`` with a small dict for each up/down/change/drop."""
        self._listeners.append(callback)

    def schedule(self, event: ScheduleEvent) -> None:
        """Add a timed event; one for a time already past applies at the next call."""
        apply_ns = event.at_ns if self._now is None else max(event.at_ns, self._now)
        heapq.heappush(self._events, (apply_ns, self._seq, event))
        self._seq += 1

    def set_initial(self, event: ScheduleEvent, now_ns: int) -> None:
        """Put ``event`` in force at ``now_ns``, ahead of its time: the state a link starts a run
        in, set before the run starts. Its record says it was applied at ``event.at_ns`` when that
        is still ahead (it is in force then), and at ``now_ns`` when it came too late."""
        if self._now is None or now_ns > self._now:
            self._now = now_ns
        self._advance(self._now)
        self._apply(event, self._now, max(self._now, event.at_ns))

    def accepting(self) -> bool:
        """Whether the engine should read more input now.

        Always True for frames and datagrams (the shaper drops what it cannot
        carry). A stream stalls: False while down or while its queue is full.
        """
        if not self._stream:
            return True
        return self._config.up and not self._tx.full()

    def accept(self, data: bytes, now_ns: int, tag: object = None) -> None:
        """Take a unit the engine received at ``now_ns``."""
        last = self._now
        if last is not None and now_ns < last:
            now_ns = last
        self._now = now_ns
        events = self._events
        if (events and events[0][0] <= now_ns) or self._tx_on:
            self._advance(now_ns)
        stats = self.stats
        n = len(data)
        stats.units_in += 1
        stats.bytes_in += n
        chunk = self._chunk
        if chunk and n > chunk:
            for i in range(0, n, chunk):
                self._feed(Unit(data[i : i + chunk], now_ns, tag), now_ns, self._filters)
        else:
            self._feed(Unit(data, now_ns, tag), now_ns, self._filters)

    def pop_due(self, now_ns: int) -> list[Unit]:
        """The units whose delivery time is <= ``now_ns``, in delivery order."""
        last = self._now
        if last is not None and now_ns < last:
            now_ns = last
        self._now = now_ns
        if self._events or self._tx_on:
            self._advance(now_ns)
        if self._prop_on:
            due = self._prop.pop_due(now_ns)
            if due:
                if self._out:
                    self._out.extend(due)
                else:
                    self._out = due
            if not self._prop.delay_ns and not self._prop.jitter_ns and not len(self._prop):
                self._prop_on = False
        out = self._out
        if out:
            self._out = []
            stats = self.stats
            stats.units_out += len(out)
            stats.bytes_out += sum(len(u.data) for u in out)
        return out

    def next_wake_ns(self) -> int | None:
        """The earliest time at which pop_due would hand out or change anything."""
        if self._out:
            return self._now
        wake = self._events[0][0] if self._events else None
        for on, stage in ((self._tx_on, self._tx), (self._prop_on, self._prop)):
            if on:
                w = stage.next_wake_ns()
                if w is not None and (wake is None or w < wake):
                    wake = w
        return wake

    @property
    def in_flight(self) -> int:
        """Units inside the direction: stalled, queued, on the wire or propagating."""
        return len(self._gate._held) + len(self._tx) + len(self._prop) + len(self._out)

    # -- inside -------------------------------------------------------------------------

    def _feed(self, unit: Unit, t: int, filters: tuple[InstantStage, ...]) -> None:
        for stage in filters:
            kept = stage.filter(unit, t)
            if kept is None:
                return
            unit = kept
        if self._tx_on:
            self._tx.accept(unit, t)
        elif self._prop_on:
            self._prop.accept(unit, t)
        else:
            self._out.append(unit)

    def _advance(self, now_ns: int) -> None:
        """Run every departure and event up to ``now_ns`` at its own instant."""
        events = self._events
        tx = self._tx
        prop = self._prop
        while True:
            te = events[0][0] if events else None
            tw = tx.next_wake_ns() if self._tx_on else None
            if tw is not None and tw <= now_ns and (te is None or tw <= te):
                for unit in tx.pop_due(tw):
                    if self._prop_on:
                        prop.accept(unit, tw)
                    else:
                        self._out.append(unit)
                if not len(tx) and tx.rate is None:
                    self._tx_on = False
                continue
            if te is not None and te <= now_ns:
                _, _, event = heapq.heappop(events)
                self._apply(event, te, now_ns)
                continue
            return

    def _apply(self, event: ScheduleEvent, t: int, now_ns: int) -> None:
        old = self._config
        gate_only = not event.changes
        new = self._with_up(old, event.up) if gate_only else event.applied_to(old)
        gate_changed = new.up != old.up
        if gate_changed and not new.up and not self._stream:
            # Units due at the instant of the cut arrive; the rest is lost in flight,
            # unless this is a window's planned end (ScheduleEvent.keep_in_flight).
            if self._prop_on:
                self._out.extend(self._prop.pop_due(t))
            self._tx.cut(t)
            if not event.keep_in_flight:
                self._prop.cut(t)
        released = self._open_or_close(new) if gate_only else self._configure(new, t)
        if gate_changed:
            self.stats.transitions.append(GateTransition(new.up, event.at_ns, now_ns))
            self._emit({"event": "up" if new.up else "down", "at_ns": event.at_ns, "applied_ns": now_ns})
        if event.changes:
            self._emit({"event": "change", "at_ns": event.at_ns, "applied_ns": now_ns, "changes": dict(event.changes)})
        for unit in released:  # a stream's stalled bytes go on when the link is up
            self._feed(unit, t, self._filters)

    def _with_up(self, config: DirectionConfig, up: bool | None) -> DirectionConfig:
        """``config`` with its gate ``up``. A link that only opens and closes swaps between two
        configs: kept, not made again at each edge (many links change at once at a window's edge)."""
        if up is None or up == config.up:
            return config
        pair = self._gate_pair
        if pair is not None and config is pair[0]:
            return pair[1]
        if pair is not None and config is pair[1]:
            return pair[0]
        flipped = replace(config, up=up)
        self._gate_pair = (config, flipped)
        return flipped

    def _open_or_close(self, config: DirectionConfig) -> list[Unit]:
        """:meth:`_configure` for a config that differs only in ``up``: only the gate changes."""
        self._config = config
        released = self._gate.set_up(config.up)
        self._filters = tuple(s for s in (self._gate, self._loss, self._corrupt) if not s.identity())
        return released

    def _configure(self, config: DirectionConfig, t: int) -> list[Unit]:
        """Hand ``config`` to every stage from ``t`` on; returns units a gate opening released."""
        self._config = config
        released = self._gate.set_up(config.up)
        stream = self._stream
        if not stream:
            self._loss.configure(config)
            self._corrupt.configure(config.ber)
        self._tx.configure(config, t)
        self._prop.configure(config)
        self._filters = tuple(s for s in (self._gate, self._loss, self._corrupt) if not s.identity())
        self._tx_on = not self._tx.identity()
        self._prop_on = not self._prop.identity()
        rate = config.line_rate_bps()
        if self.medium is Medium.SERIAL and rate is not None:
            per_ms = rate // config.bits_per_byte // 1000
            self._chunk = max(SERIAL_MIN_CHUNK_BYTES, per_ms)
        else:
            self._chunk = 0
        return released

    def _drop(self, unit: Unit, reason: str, t: int) -> None:
        stats = self.stats
        stats.drops[reason] += 1
        stats.drop_bytes[reason] += len(unit.data)
        if self._listeners:
            self._emit({"event": "drop", "reason": reason, "t_ns": t, "bytes": len(unit.data)})

    def _emit(self, event: dict[str, Any]) -> None:
        if self.name:
            event["direction"] = self.name
        for callback in self._listeners:
            callback(event)
