"""ION contact plans (``ionrc`` ``a contact`` / ``a range`` lines) to and from hilnet. Pure.

Export writes the plan's *wall-time* contacts, since ION runs on a plain clock:
``a contact +START +END FROM TO RATE`` (seconds from the start, whole seconds;
RATE in bundle bytes per second after framing overhead) and
``a range +START +END FROM TO OWLT`` (one-way light time in whole seconds).
ION names nodes by ipn node number only, so contacts of a node with a
``dtn://`` eid are left out, each with a ``#`` comment saying so. Start times
are rounded up and end times down to whole seconds, so ION is never promised a
contact hilnet does not open; OWLT is rounded up, so ION never expects a bundle
before it can arrive.

Import reads those two kinds of lines (other ionrc commands are skipped) and
writes a scenario ``nodes:`` and ``links:`` block as YAML text: one ethernet
link per node pair, windows from the contacts (times multiplied by ``scale``),
``delay`` from the ranges, and a raw ``rate`` chosen so that hilnet's plan gives
back exactly the contact's bytes/s after Ethernet/TCP overhead. Per-direction
differences become ``a->b:`` blocks and later rate or delay changes become
``changes:``. Windows must be the same in both directions, since a hilnet link
is up or down as a whole.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hilnet.bundle.eid import parse_eid
from hilnet.errors import ContactPlanError
from hilnet.scenario.model import Scenario
from hilnet.scenario.overhead import efficiency
from hilnet.scenario.plan import Plan
from hilnet.units import format_duration, wall_to_scenario_ns

NS_PER_S = 1_000_000_000
_RELATIVE = re.compile(r"\+(\d+(?:\.\d+)?)")


# -- export -----------------------------------------------------------------------


def export_ion(scenario: Scenario, plan: Plan) -> str:
    """ION ``a contact`` / ``a range`` lines for ``plan`` (compiled from ``scenario``), wall time."""
    numbers = {n.name: parse_eid(n.eid).node_number for n in scenario.nodes}
    lines = [
        f"# ION contact plan of scenario {scenario.name}, written by hilnet",
        f"# wall time: scenario times / scale {scenario.clock.scale:g}; rates are bundle bytes/s after "
        "framing overhead; OWLT rounded up to whole seconds",
    ]
    skipped: set[tuple[str, str]] = set()
    for wc, cap in zip(plan.wall_contacts, plan.capacities):
        frm, to = numbers[wc.frm], numbers[wc.to]
        if frm is None or to is None:
            key = (cap.link, wc.frm if frm is None else wc.to)
            if key not in skipped:
                skipped.add(key)
                lines.append(
                    f"# skipped link {cap.link}: node {key[1]} has a dtn:// eid, and ION contact "
                    "plans name nodes by ipn node number"
                )
            continue
        start = math.ceil(wc.start_ns / NS_PER_S)
        end = wc.end_ns // NS_PER_S
        if end <= start:
            lines.append(
                f"# skipped {wc.frm}->{wc.to} contact {wc.start_ns}ns-{wc.end_ns}ns: shorter than the "
                "whole second ION needs"
            )
            continue
        if start * NS_PER_S != wc.start_ns or end * NS_PER_S != wc.end_ns:
            lines.append(
                f"# {wc.frm}->{wc.to} {format_duration(wc.start_ns)}-{format_duration(wc.end_ns)} "
                "narrowed to whole seconds"
            )
        owlt = math.ceil(wc.owlt_ns / NS_PER_S)
        lines.append(f"a contact +{start} +{end} {frm} {to} {wc.rate}")
        lines.append(f"a range +{start} +{end} {frm} {to} {owlt}")
    return "\n".join(lines) + "\n"


# -- import -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IonLine:
    """One ``a contact`` or ``a range`` line; ``value`` is a rate (bytes/s) or an OWLT (s)."""

    kind: str  # "contact" or "range"
    start_s: float
    end_s: float
    frm: int
    to: int
    value: float
    line: int  # 1-based line number in the ionrc text


def parse_ionrc(text: str, source: str = "<ionrc>") -> list[IonLine]:
    """The ``a contact`` and ``a range`` lines of ionrc text; other commands are skipped."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) < 2 or words[0] != "a" or words[1] not in ("contact", "range"):
            continue
        kind = words[1]
        args = words[2:]
        # ION 4 allows a confidence after a contact's rate; it does not change the schedule.
        if not (len(args) == 5 or (kind == "contact" and len(args) == 6)):
            raise ContactPlanError(
                f"{source}:{number}: 'a {kind}' has {len(args)} arguments; expected "
                f"a {kind} +START +END FROM TO {'RATE [CONFIDENCE]' if kind == 'contact' else 'OWLT'}"
            )
        start, end = (_relative(a, source, number, what) for a, what in zip(args[:2], ("start", "end")))
        try:
            frm, to = int(args[2]), int(args[3])
            value = float(args[4])
        except ValueError:
            raise ContactPlanError(
                f"{source}:{number}: cannot read {' '.join(args[2:5])!r}; expected node "
                f"numbers and {'a rate in bytes/s' if kind == 'contact' else 'an OWLT in seconds'}"
            ) from None
        if frm <= 0 or to <= 0 or frm == to:
            raise ContactPlanError(
                f"{source}:{number}: nodes {frm} and {to}; expected two different node numbers above 0"
            )
        if end <= start:
            raise ContactPlanError(
                f"{source}:{number}: ends at +{end:g} before it starts at +{start:g}; expected START < END"
            )
        if value < 0 or (kind == "contact" and value == 0) or not math.isfinite(value):
            raise ContactPlanError(f"{source}:{number}: {kind} value {args[4]}; expected a number above 0")
        out.append(IonLine(kind, start, end, frm, to, value, number))
    return out


def _relative(arg: str, source: str, line: int, what: str) -> float:
    m = _RELATIVE.fullmatch(arg)
    if not m:
        raise ContactPlanError(
            f"{source}:{line}: {what} time {arg!r} is not relative; expected +SECONDS "
            "(absolute yyyy/mm/dd-hh:mm:ss times are not supported)"
        )
    return float(m.group(1))


def raw_rate_for_goodput(goodput: int) -> int:
    """The smallest ethernet rate (bit/s) whose plan goodput, rounded down, is ``goodput`` bytes/s."""
    eff = efficiency("ethernet")
    raw = math.ceil(goodput * 8 / eff)
    while raw > 1 and int((raw - 1) / 8 * eff) >= goodput:
        raw -= 1
    while int(raw / 8 * eff) < goodput:
        raw += 1
    return raw


def import_ion(text: str, scale: float = 1.0, source: str = "<ionrc>") -> str:
    """ION contact-plan text -> scenario ``nodes:`` and ``links:`` YAML (times x ``scale``)."""
    lines = parse_ionrc(text, source)
    contacts = [x for x in lines if x.kind == "contact"]
    if not contacts:
        raise ContactPlanError(f"{source}: no 'a contact' lines; expected lines such as a contact +0 +600 1 2 100000")
    ranges = [x for x in lines if x.kind == "range"]
    pairs: dict[tuple[int, int], dict[tuple[int, int], list[IonLine]]] = {}
    for c in contacts:
        pair = (min(c.frm, c.to), max(c.frm, c.to))
        pairs.setdefault(pair, {}).setdefault((c.frm, c.to), []).append(c)
    nodes = sorted({n for pair in pairs for n in pair})
    out = [f"# from ION contact plan {source} (times x scale {scale:g}); add hilnet: 1, clock and traffic", "nodes:"]
    out += [f"  node-{n}: {{eid: ipn:{n}.0}}" for n in nodes]
    out.append("links:")
    last_end = 0.0
    for (a, b), by_dir in sorted(pairs.items()):
        fwd, bwd, one_way = _both_ways(a, b, by_dir, source)
        last_end = max(last_end, fwd[-1].end_s)
        out += _link_lines(a, b, fwd, bwd, one_way, ranges, scale)
    out.append(f"# the last contact ends at {_scenario_time(last_end, scale)}: clock.duration must be at least that")
    return "\n".join(out) + "\n"


def _both_ways(
    a: int, b: int, by_dir: dict[tuple[int, int], list[IonLine]], source: str
) -> tuple[list[IonLine], list[IonLine], bool]:
    """The contacts a->b and b->a in time order, which must share their windows; and whether ION gave one way only."""
    fwd = sorted(by_dir.get((a, b), []), key=lambda c: c.start_s)
    bwd = sorted(by_dir.get((b, a), []), key=lambda c: c.start_s)
    one_way = not fwd or not bwd
    if one_way:  # a hilnet link carries both ways; mirror the one direction given
        fwd = fwd or [IonLine(c.kind, c.start_s, c.end_s, a, b, c.value, c.line) for c in bwd]
        bwd = bwd or [IonLine(c.kind, c.start_s, c.end_s, b, a, c.value, c.line) for c in fwd]
    if [(c.start_s, c.end_s) for c in fwd] != [(c.start_s, c.end_s) for c in bwd]:
        first = next(
            c
            for c, d in zip(fwd + [None], bwd + [None])
            if c is None or d is None or (c.start_s, c.end_s) != (d.start_s, d.end_s)
        )
        line = first.line if first else fwd[-1].line
        raise ContactPlanError(
            f"{source}:{line}: contacts {a}->{b} and {b}->{a} have different windows; "
            "expected the same windows both ways (a hilnet link is up or down as a whole)"
        )
    for prev, cur in zip(fwd, fwd[1:]):
        if cur.start_s < prev.end_s:
            raise ContactPlanError(
                f"{source}:{cur.line}: contact {a}->{b} overlaps the one on line "
                f"{prev.line}; expected contacts one after another"
            )
    return fwd, bwd, one_way


def _link_lines(
    a: int, b: int, fwd: list[IonLine], bwd: list[IonLine], one_way: bool, ranges: list[IonLine], scale: float
) -> list[str]:
    """The scenario YAML of link node-a-node-b: parameters of its first window, windows, then changes."""
    # per window: (rate bit/s, delay ns) in each direction
    steps = [(c.start_s, _params(c, ranges), _params(d, ranges)) for c, d in zip(fwd, bwd)]
    fname, bname = f"node-{a}->node-{b}", f"node-{b}->node-{a}"
    out = [f"  node-{a}-node-{b}:"]
    if one_way:
        out.append("    # ION gave contacts one way only; the same windows are used both ways")
    out.append(f"    ends: [node-{a}, node-{b}]")
    out.append("    medium: ethernet  # ION rates are bundle bytes/s; raw rate chosen to give them back")
    _, f0, b0 = steps[0]
    out += _param_lines(f0, b0, fname, bname, "    ")
    windows = ", ".join(
        f"{_scenario_time(s, scale)}-{_scenario_time(e, scale)}"
        for s, e in _joined([(c.start_s, c.end_s) for c in fwd])
    )
    out.append(f"    up: [{windows}]")
    changes = []
    cur_f, cur_b = f0, b0
    for start, pf, pb in steps[1:]:
        if (pf, pb) != (cur_f, cur_b):
            items = _change_items(cur_f, cur_b, pf, pb, fname, bname)
            changes.append(f"      - {{at: {_scenario_time(start, scale)}, {items}}}")
            cur_f, cur_b = pf, pb
    if changes:
        out.append("    changes:")
        out += changes
    return out


def _params(c: IonLine, ranges: list[IonLine]) -> tuple[int, int]:
    """(raw rate bit/s, delay ns) for a contact: ION ranges are symmetric unless both ways are given."""
    owlt = 0.0
    for frm, to in ((c.frm, c.to), (c.to, c.frm)):
        found = [r for r in ranges if (r.frm, r.to) == (frm, to) and r.start_s <= c.start_s < r.end_s]
        if found:
            owlt = found[0].value
            break
    return raw_rate_for_goodput(math.floor(c.value)), round(owlt * NS_PER_S)


def _joined(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Contacts split only by a change of rate are one window: join touching spans."""
    out: list[tuple[float, float]] = []
    for s, e in spans:
        if out and s == out[-1][1]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _time(seconds: float) -> str:
    return format_duration(round(seconds * NS_PER_S))


def _scenario_time(wall_s: float, scale: float) -> str:
    """An ION time (wall seconds) as the scenario duration it stands for at ``scale``."""
    return format_duration(wall_to_scenario_ns(round(wall_s * NS_PER_S), scale))


def _values(p: tuple[int, int]) -> dict[str, str]:
    return {"rate": f"{p[0]}bit/s", "delay": _time(p[1] / NS_PER_S)}


def _param_lines(f: tuple[int, int], b: tuple[int, int], fname: str, bname: str, indent: str) -> list[str]:
    vf, vb = _values(f), _values(b)
    out = [f"{indent}{k}: {v}" for k, v in vf.items()]
    diff = {k: v for k, v in vb.items() if vf[k] != v}
    if diff:
        out.append(f"{indent}{bname}: {{{', '.join(f'{k}: {v}' for k, v in diff.items())}}}")
    return out


def _change_items(
    of: tuple[int, int], ob: tuple[int, int], nf: tuple[int, int], nb: tuple[int, int], fname: str, bname: str
) -> str:
    vof, vob, vnf, vnb = _values(of), _values(ob), _values(nf), _values(nb)
    df = {k: v for k, v in vnf.items() if vof[k] != v}
    db = {k: v for k, v in vnb.items() if vob[k] != v}
    if df == db:
        return ", ".join(f"{k}: {v}" for k, v in df.items())
    parts = []
    for name, d in ((fname, df), (bname, db)):
        if d:
            parts.append(f"{name}: {{{', '.join(f'{k}: {v}' for k, v in d.items())}}}")
    return ", ".join(parts)
