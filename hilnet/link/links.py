"""The engine's links: what one link is made of, and the handle other threads hold.

A :class:`Link` joins two endpoints through two shaper directions
(:class:`Side`); only the engine's loop thread touches it. A
:class:`LinkHandle` is what :meth:`Engine.add_link` returns: it changes the
link by posting commands to the loop and reads its counters by asking the loop
for a snapshot (:class:`~hilnet.link.control.CommandQueue`), so no thread ever
reads a counter while the loop updates it. Whether the link still runs
(:class:`LinkState`) is set by the outbox once the link's ``link-stopped``
event has gone to the listener.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hilnet.clock import Clock
from hilnet.errors import LinkError, SpecError
from hilnet.link.control import CommandQueue
from hilnet.link.endpoints import open_endpoint
from hilnet.link.endpoints.base import Endpoint
from hilnet.link.outbox import Outbox

if TYPE_CHECKING:
    from hilnet.link.capture import LinkCapture
    from hilnet.link.shaper import Direction, DirectionConfig, ScheduleEvent

# Per direction: counters and gate history, as LinkHandle.stats() returns them.
Stats = dict[str, dict[str, Any]]


@dataclass(slots=True, eq=False)
class Side:
    """One direction of a link: where units come from and where they go."""

    name: str  # "a->b" or "b->a"
    direction: Direction
    src: Endpoint
    dst: Endpoint
    src_end: str  # "a" or "b": the end whose input feeds this direction
    dst_end: str


@dataclass(slots=True)
class LinkState:
    """What a handle tells about a running link; written by the outbox thread only."""

    alive: bool = True
    error: str | None = None  # why the link stopped, if it failed


@dataclass(slots=True, eq=False)
class Link:
    """One link, as the loop thread keeps it."""

    name: str
    a: Endpoint
    b: Endpoint
    ab: Side
    ba: Side
    capture: LinkCapture | None
    state: LinkState = field(default_factory=LinkState)
    alive: bool = True
    dirty: bool = True  # descriptors to (re)register before the next wait
    fds: dict[int, int] = field(default_factory=dict)  # fd -> mask currently registered
    owner: dict[int, Endpoint] = field(default_factory=dict)
    script: list[tuple[Side, ScheduleEvent]] = field(default_factory=list)  # armed, in run time: see arm()

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.ab, self.ba)

    def stats(self) -> Stats:
        """A snapshot of both directions' counters (loop thread, or no loop running)."""
        return {s.name: _side_stats(s) for s in self.sides}


class LinkHandle:
    """Thread-safe controls of one link in a running (or not yet started) engine.

    Every method raises the engine's :class:`~hilnet.errors.LinkError` once its
    event listener has failed: the run is broken and says why.
    """

    def __init__(self, link: Link, commands: CommandQueue, outbox: Outbox, clock: Clock):
        self._link = link
        self._commands = commands
        self._outbox = outbox
        self._clock = clock
        self.name = link.name
        self.a = link.a
        self.b = link.b

    @property
    def alive(self) -> bool:
        """False once the link was stopped (endpoint error or engine stop) and its events are out."""
        return self._link.state.alive

    @property
    def error(self) -> str | None:
        """Why the link stopped, if it failed."""
        return self._link.state.error

    def schedule(self, direction: str, event: ScheduleEvent) -> None:
        """Add a ScheduleEvent to ``direction``: ``"a->b"``, ``"b->a"`` or ``"both"``."""
        self._outbox.check()
        sides = self._sides(direction)

        def add() -> None:
            for s in sides:
                s.direction.schedule(event)

        self._commands.post(add, self._link)

    def arm(self, direction: str, events: Iterable[ScheduleEvent]) -> None:
        """Give ``direction`` its script in *run time* (ns from the run's start, not yet chosen):
        :meth:`Engine.begin <hilnet.link.engine.Engine.begin>` schedules it once the start is known."""
        self._outbox.check()
        sides, events = self._sides(direction), list(events)
        link = self._link

        def add() -> None:
            link.script.extend((s, e) for s in sides for e in events)

        self._commands.post(add, link)

    def set_up(self, up: bool, at_ns: int | None = None, direction: str = "both") -> None:
        """Open or close the gate at ``at_ns`` (engine clock ns; default: now)."""
        from hilnet.link.shaper import ScheduleEvent

        at = self._clock.now_ns() if at_ns is None else at_ns
        self.schedule(direction, ScheduleEvent(at_ns=at, up=bool(up)))

    def change(self, at_ns: int | None = None, direction: str = "both", **changes: object) -> None:
        """Change DirectionConfig fields (``rate_bps=2_000_000, delay_ns=...``) at ``at_ns``."""
        from hilnet.link.shaper import ScheduleEvent

        at = self._clock.now_ns() if at_ns is None else at_ns
        self.schedule(direction, ScheduleEvent(at_ns=at, changes=changes))

    def stats(self) -> Stats:
        """Per direction (``"a->b"``, ``"b->a"``): ``units_in``, ``bytes_in``, ``units_out``
        (delivered), ``bytes_out``, ``drops`` and ``drop_bytes`` by reason, ``bits_flipped``,
        ``up``, and gate ``transitions`` as (up, intended_ns, applied_ns).

        Asked of the loop thread, which answers after the listener has had every event
        emitted before: do not call it while holding a lock the listener takes."""
        self._outbox.check()
        stats = self._commands.ask(self._link.stats)
        self._outbox.check()
        return stats

    def _sides(self, direction: str) -> list[Side]:
        link = self._link
        if direction == "both":
            return list(link.sides)
        for s in link.sides:
            if direction == s.name:
                return [s]
        raise LinkError(f"link {link.name}: no direction {direction!r}; expected 'a->b', 'b->a' or 'both'")


def _side_stats(side: Side) -> dict[str, Any]:
    st = side.direction.stats
    drops = {k: v for k, v in st.drops.items() if v}
    drop_bytes = {k: v for k, v in st.drop_bytes.items() if v}
    if side.dst.overruns:
        drops["overrun"] = side.dst.overruns  # delivered by the shaper, refused by the OS
    lost_units, lost_bytes = side.dst.undeliverable_units, side.dst.undeliverable_bytes
    if lost_bytes or lost_units:  # delivered by the shaper to a relay end with nowhere to send it
        drops["undeliverable"] = lost_units
        drop_bytes["undeliverable"] = lost_bytes
    return {
        "units_in": st.units_in,
        "bytes_in": st.bytes_in,
        "units_out": st.units_out - side.dst.overruns - lost_units,
        "bytes_out": st.bytes_out - lost_bytes,
        "drops": drops,
        "drop_bytes": drop_bytes,
        "bits_flipped": st.bits_flipped,
        "up": side.direction.is_up(),
        "transitions": [(t.up, t.intended_ns, t.applied_ns) for t in st.transitions],
        # A remote port (rfc2217://) at either end puts a network into this direction's path.
        "remote": [
            {"end": end, **info}
            for end, ep in ((side.src_end, side.src), (side.dst_end, side.dst))
            if (info := ep.transport()) is not None
        ],
    }


def open_ends(
    name: str, a: str | Endpoint, b: str | Endpoint, capture_dir: str | None
) -> tuple[Endpoint, Endpoint, LinkCapture | None]:
    """Open the endpoints given as specs, check they can be joined, open the capture.

    Raises SpecError for endpoints that cannot be joined and EndpointError when
    one cannot be opened; the endpoints opened here are closed again then.
    """
    opened: list[Endpoint] = []
    try:
        ends: list[Endpoint] = []
        for end, given in (("a", a), ("b", b)):
            if isinstance(given, Endpoint):
                ends.append(given)
            else:
                opened.append(open_endpoint(given, label=f"{name}.{end}"))
                ends.append(opened[-1])
        ea, eb = ends
        if ea.medium != eb.medium:
            raise SpecError(
                f"link {name}: cannot join {ea.medium.lower()} endpoint {ea.spec.text!r} "
                f"to {eb.medium.lower()} endpoint {eb.spec.text!r}; both ends must be the same kind"
            )
        capture = None
        if capture_dir is not None:
            from hilnet.link.capture import LinkCapture

            capture = LinkCapture(capture_dir, name, ea, eb)
    except BaseException:
        for ep in opened:
            ep.close()
        raise
    return ea, eb, capture


def make_link(
    name: str,
    ea: Endpoint,
    eb: Endpoint,
    capture: LinkCapture | None,
    ab: DirectionConfig | None,
    ba: DirectionConfig | None,
    seed: int,
    schedule_ab: Iterable[ScheduleEvent],
    schedule_ba: Iterable[ScheduleEvent],
) -> Link:
    """Two open endpoints joined through a shaper direction each way (``ba`` defaults to ``ab``)."""
    # Imported on first use so that endpoints and the CLI's --help stay light.
    from hilnet.link.shaper import Direction, DirectionConfig, Medium

    ab = ab if ab is not None else DirectionConfig()
    ba = ba if ba is not None else ab
    medium = Medium[ea.medium]
    d_ab = Direction(fit_serial(ab, ea, eb), medium, seed=seed * 2, schedule=schedule_ab, name=f"{name}:a->b")
    d_ba = Direction(fit_serial(ba, eb, ea), medium, seed=seed * 2 + 1, schedule=schedule_ba, name=f"{name}:b->a")
    return Link(name, ea, eb, Side("a->b", d_ab, ea, eb, "a", "b"), Side("b->a", d_ba, eb, ea, "b", "a"), capture)


def count_oversize(link: Link, side: Side, size: int, t: int) -> dict[str, Any]:
    """Count a unit of ``size`` bytes too big for ``side``'s far end as dropped; returns its ``drop`` event.

    Counted in the direction's own counters, so that in = out + drops + in flight holds."""
    st = side.direction.stats
    st.units_in += 1
    st.bytes_in += size
    st.drops["oversize"] = st.drops.get("oversize", 0) + 1
    st.drop_bytes["oversize"] = st.drop_bytes.get("oversize", 0) + size
    return {
        "event": "drop",
        "reason": "oversize",
        "link": link.name,
        "direction": side.name,
        "t_ns": t,
        "bytes": size,
        "limit": side.dst.max_unit,
    }


def schedule_scripts(links: Iterable[Link], t0_ns: int, clock: Clock) -> None:
    """Schedule every armed script (:meth:`LinkHandle.arm`) from ``t0_ns`` on (loop thread).

    What a script sets at run time 0 is the link's initial state: it is put in force now,
    before the run starts, so that no link opens late however many open at 0 (their records
    say 0, or how late they were when this ran after ``t0_ns``)."""
    for link in links:
        if not link.alive:
            continue
        for side, e in link.script:
            if e.at_ns == 0:
                side.direction.set_initial(dataclasses.replace(e, at_ns=t0_ns), clock.now_ns())
            else:
                side.direction.schedule(dataclasses.replace(e, at_ns=t0_ns + e.at_ns))
        link.script.clear()
        link.dirty = True


def fit_serial(cfg: DirectionConfig, src: Endpoint, dst: Endpoint) -> DirectionConfig:
    """Give a serial direction the line speed of a UART endpoint when none was set."""
    if src.medium != "SERIAL" or cfg.baud is not None:
        return cfg
    for ep in (src, dst):
        if ep.baud:
            return dataclasses.replace(cfg, baud=ep.baud, bits_per_byte=ep.bits_per_byte or cfg.bits_per_byte)
    return cfg


def end_name(link: Link, ep: Endpoint | None) -> str | None:
    """``"a"`` or ``"b"`` for one of the link's endpoints, None for neither."""
    if ep is link.a:
        return "a"
    if ep is link.b:
        return "b"
    return None
