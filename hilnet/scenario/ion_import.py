"""An ION contact plan as a hilnet scenario (YAML text), with a note for all it left out. Pure.

One ethernet link per pair of nodes that have contacts. Each direction's
contacts become that direction's windows; when both directions have the same
windows the link's ``up:`` says them once, else each direction block
(``node-1->node-2:``) carries its own ``up:`` (``[]`` for a direction ION
gives no contact: one-way). Rates and delays of the first contact become the
link's parameters, later ones ``changes:``. A contact's rate is bundle bytes/s,
so the link gets the raw ``rate`` whose plan goodput gives it back exactly;
its delay is the one-way light time of the range that covers its start (ION
ranges hold both ways unless the other way has its own).

Time: ION's relative ``+SECONDS`` count from its start, which is scenario time
0; absolute times are placed against ``clock.epoch`` (the ``epoch`` argument,
else the earliest absolute time in the file, which the output then states).
ION times are wall seconds; scenario times are them times ``scale``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import PurePath

from hilnet.errors import ContactPlanError
from hilnet.scenario.epoch import format_utc, parse_utc
from hilnet.scenario.ion import raw_rate_for_goodput
from hilnet.scenario.ionrc import IonLine, IonTime, parse_ionrc
from hilnet.scenario.wall import MAX_WALL_RATE_BPS
from hilnet.units import format_duration, format_rate, wall_to_scenario_ns

NS_PER_S = 1_000_000_000
DEFAULT_DURATION = "1h"  # for a plan without one contact between two nodes


@dataclass(frozen=True, slots=True)
class Imported:
    text: str  # the scenario, YAML
    notes: tuple[str, ...]  # one line each: what was skipped, defaulted or chosen


@dataclass(frozen=True, slots=True)
class _Step:
    """One contact placed in scenario wall seconds, with what the link needs of it."""

    start: int
    end: int
    rate_bps: int  # raw ethernet rate that gives the contact's bytes/s back as goodput
    delay_ns: int
    line: int


_Values = dict[str, str]


def import_ion(text: str, scale: float = 1.0, source: str = "<ionrc>", epoch: str | None = None) -> Imported:
    """ION ionrc ``text`` -> a whole scenario (times x ``scale``); ``epoch`` is scenario time 0 (UTC ISO 8601)."""
    rc = parse_ionrc(text, source)
    if not rc.nodes:
        raise ContactPlanError(f"{source}: no 'a contact' lines; expected lines such as a contact +0 +600 1 2 100000")
    notes = list(rc.notes)
    epoch_s, epoch_line = _epoch(rc.lines, epoch, source, notes)
    contacts = [c for c in rc.lines if c.kind == "contact"]
    ranges = [(r, *span) for r in rc.lines if r.kind == "range" and (span := _placed(r, epoch_s, source, notes))]
    used: set[int] = set()
    pairs: dict[tuple[int, int], dict[tuple[int, int], list[_Step]]] = {}
    for c in contacts:
        span = _placed(c, epoch_s, source, notes)
        if span is None:
            continue
        delay = _delay(c, span[0], ranges, used, source, notes)
        rate = raw_rate_for_goodput(max(1, math.floor(c.value)))
        if rate > MAX_WALL_RATE_BPS:
            # ION plans often give a nominal huge rate for "as fast as it goes"; no emulated link runs it.
            notes.append(
                f"{source}:{c.line}: contact {c.frm}->{c.to} rate {format_rate(rate)} is above what the link "
                f"engine forwards; capped at {format_rate(MAX_WALL_RATE_BPS)}"
            )
            rate = MAX_WALL_RATE_BPS
        step = _Step(span[0], span[1], rate, delay, c.line)
        pairs.setdefault((min(c.frm, c.to), max(c.frm, c.to)), {}).setdefault((c.frm, c.to), []).append(step)
    for r, start, end in ranges:
        if r.line not in used:
            notes.append(f"{source}:{r.line}: range {r.frm}->{r.to} +{start}..+{end} s matches no contact; ignored")
    links: list[str] = []
    last = 0
    for (a, b), by_dir in sorted(pairs.items()):
        fwd, bwd = (sorted(by_dir.get(d, []), key=lambda s: s.start) for d in ((a, b), (b, a)))
        for frm, to, steps in ((a, b, fwd), (b, a, bwd)):
            _no_overlap(frm, to, steps, source)
        last = max(last, *(s.end for s in fwd + bwd))
        links += _link(a, b, fwd, bwd, scale)
    if not links:
        notes.append(f"{source}: no contact between two different nodes: the scenario has no links")
    duration = _when(last, scale) if last else DEFAULT_DURATION
    head = [f"# hilnet scenario from ION contact plan {source}: ION times (wall seconds) x scale {scale:g}"]
    if epoch_line:
        head.append(f"# {epoch_line}")
    clock = f"scale: {scale:g}, duration: {duration}"
    if epoch_s is not None:
        clock += f", epoch: {json.dumps(format_utc(epoch_s * NS_PER_S))}"
    out = head + [
        "hilnet: 1",
        f"name: {json.dumps(PurePath(source).stem or 'ion')}",
        f"description: {json.dumps(f'Contact plan imported from ION ({PurePath(source).name})')}",
        f"clock: {{{clock}}}",
        "nodes:",
        *(f"  node-{n}: {{eid: ipn:{n}.0}}" for n in sorted(rc.nodes)),
    ]
    if links:
        out += ["links:", *links]
    return Imported("\n".join(out) + "\n", tuple(notes))


def _epoch(lines: tuple[IonLine, ...], epoch: str | None, source: str, notes: list[str]) -> tuple[int | None, str]:
    """Unix seconds of scenario time 0 (None: the file has only relative times), and what to say about it."""
    if epoch is not None:
        unix_ns = parse_utc(epoch)
        if unix_ns is None:
            raise ContactPlanError(
                f"epoch {epoch!r} is not a UTC ISO 8601 time; expected one such as 2024-03-01T12:00:00Z"
            )
        return unix_ns // NS_PER_S, f"scenario time 0 is the given epoch {epoch}"
    absolute = [t.seconds for x in lines for t in (x.start, x.end) if t.absolute]
    if not absolute:
        return None, ""
    first = min(absolute)
    said = (
        f"scenario time 0 is {format_utc(first * NS_PER_S)}, the earliest time in the file (no epoch was given); "
        "relative +SECONDS count from it too"
    )
    notes.append(f"{source}: {said}")
    return first, said


def _seconds(t: IonTime, epoch_s: int | None) -> int:
    return t.seconds - (epoch_s or 0) if t.absolute else t.seconds


def _placed(x: IonLine, epoch_s: int | None, source: str, notes: list[str]) -> tuple[int, int] | None:
    """(start, end) of ``x`` in seconds from scenario time 0; None (noted) when nothing of it is left."""
    start, end = _seconds(x.start, epoch_s), _seconds(x.end, epoch_s)
    what = f"{source}:{x.line}: {x.kind} {x.frm}->{x.to} {x.start.text}..{x.end.text}"
    if end <= max(start, 0):
        why = "is empty once placed" if end <= start else "ends before scenario time 0"
        hint = f"an epoch before {x.end.text}" if x.end.absolute else "another epoch"
        notes.append(f"{what} {why} ({start}..{end} s); skipped (give {hint} to place it)")
        return None
    if start < 0:
        notes.append(f"{what} starts {-start} s before scenario time 0; cut to start at 0")
        start = 0
    return start, end


def _delay(
    c: IonLine,
    start: int,
    ranges: list[tuple[IonLine, int, int]],
    used: set[int],
    source: str,
    notes: list[str],
) -> int:
    """One-way light time (ns) for a contact: a range its way, else the other way, covering its start."""
    for frm, to in ((c.frm, c.to), (c.to, c.frm)):
        for r, rs, re_ in ranges:
            if (r.frm, r.to) == (frm, to) and rs <= start < re_:
                used.add(r.line)
                return round(r.value * NS_PER_S)
    notes.append(f"{source}:{c.line}: contact {c.frm}->{c.to} has no range; delay 0 used")
    return 0


def _no_overlap(frm: int, to: int, steps: list[_Step], source: str) -> None:
    for prev, cur in zip(steps, steps[1:]):
        if cur.start < prev.end:
            raise ContactPlanError(
                f"{source}:{cur.line}: contact {frm}->{to} overlaps the one on line {prev.line}; "
                "expected contacts one after another"
            )


def _when(seconds: int, scale: float) -> str:
    """ION seconds as the scenario time they stand for at ``scale``."""
    return format_duration(wall_to_scenario_ns(seconds * NS_PER_S, scale))


def _values(s: _Step) -> _Values:
    return {"rate": f"{s.rate_bps}bit/s", "delay": format_duration(s.delay_ns)}


def _windows(steps: list[_Step], scale: float) -> str:
    """Contacts split only by a change of rate are one window: touching spans are joined."""
    spans: list[list[int]] = []
    for s in steps:
        if spans and s.start == spans[-1][1]:
            spans[-1][1] = s.end
        else:
            spans.append([s.start, s.end])
    return "[" + ", ".join(f"{_when(a, scale)}-{_when(b, scale)}" for a, b in spans) + "]"


def _changes(steps: list[_Step], scale: float) -> list[str]:
    """``{at: T, key: value}`` where a contact's rate or delay differs from the one before it."""
    out = []
    for prev, cur in zip(steps, steps[1:]):
        old, new = _values(prev), _values(cur)
        diff = {k: v for k, v in new.items() if old[k] != v}
        if diff:
            out.append(f"{{at: {_when(cur.start, scale)}, {_flow(diff)}}}")
    return out


def _flow(values: _Values) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items())


def _link(a: int, b: int, fwd: list[_Step], bwd: list[_Step], scale: float) -> list[str]:
    """The YAML lines of link node-a-node-b."""
    base = _values((fwd or bwd)[0])
    same_up = _windows(fwd, scale) == _windows(bwd, scale)
    same_changes = _changes(fwd, scale) == _changes(bwd, scale)
    out = [
        f"  node-{a}-node-{b}:",
        f"    ends: [node-{a}, node-{b}]",
        "    medium: ethernet  # ION rates are bundle bytes/s; the raw rate is chosen to give them back",
        *(f"    {k}: {v}" for k, v in base.items()),
    ]
    for frm, to, steps in ((a, b, fwd), (b, a, bwd)):
        own = _values(steps[0]) if steps else base  # a direction without contacts keeps the link's values
        block = [f"      {k}: {v}" for k, v in own.items() if base[k] != v]
        if not same_up:
            block.append(f"      up: {_windows(steps, scale)}")
        if not same_changes and _changes(steps, scale):
            block += ["      changes:", *(f"        - {c}" for c in _changes(steps, scale))]
        if block:
            out += [f"    node-{frm}->node-{to}:", *block]
    if same_up:
        out.append(f"    up: {_windows(fwd, scale)}")
    if same_changes and _changes(fwd, scale):
        out += ["    changes:", *(f"      - {c}" for c in _changes(fwd, scale))]
    return out
