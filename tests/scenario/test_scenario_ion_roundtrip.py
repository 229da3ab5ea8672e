"""Round trip, as a property: export any scenario's contact plan for ION, import it, and the
same links, windows per direction, rates and delays come back.

Scenarios are generated: clock scales 1, 4 and 60, 2-4 nodes, serial and ethernet links,
shared or per-direction (one-way, asymmetric) windows, per-direction rates and delays,
timed changes. Times fall on whole wall seconds and delays are whole seconds, since an ION contact plan counts in seconds
(export narrows anything finer, which its own test covers). The comparison is the
contact plan both scenarios compile to, keyed by ipn node numbers, with touching
contacts of equal rate and delay joined (a change that leaves them equal splits a
contact in two on one side only).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilnet.scenario.ion import export_ion
from hilnet.scenario.ion_import import import_ion
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import compile_plan

DURATION_S = 600
RATES = ["256kbit/s", "1Mbit/s", "2Mbit/s", "10Mbit/s"]
BAUDS = ["9600", "57600", "115200"]


@st.composite
def _windows(draw: st.DrawFn, allow_none: bool, scale: int) -> list[tuple[int, int]]:
    """Windows in scenario seconds, on whole wall seconds at ``scale``."""
    cuts = sorted(draw(st.sets(st.integers(0, DURATION_S), min_size=0 if allow_none else 2, max_size=6)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    return [(cuts[i] * scale, cuts[i + 1] * scale) for i in range(0, len(cuts), 2)]


def _up(windows: list[tuple[int, int]]) -> str:
    return "[" + ", ".join(f"{a}s-{b}s" for a, b in windows) + "]"


@st.composite
def _link(draw: st.DrawFn, a: str, b: str, scale: int) -> list[str]:
    medium = draw(st.sampled_from(["serial", "ethernet"]))
    pace = "baud" if medium == "serial" else "rate"
    values = BAUDS if medium == "serial" else RATES
    out = [f"  {a}-{b}:", f"    ends: [{a}, {b}]", f"    medium: {medium}"]
    out += [f"    {pace}: {draw(st.sampled_from(values))}", f"    delay: {draw(st.integers(0, 3))}s"]
    shape = draw(st.sampled_from(["always", "shared", "per-direction", "one-way"]))
    blocks: dict[str, list[str]] = {f"{a}->{b}": [], f"{b}->{a}": []}
    if shape == "shared":
        out.append(f"    up: {_up(draw(_windows(False, scale)))}")
    elif shape in ("per-direction", "one-way"):
        fwd = draw(_windows(False, scale))
        bwd = [] if shape == "one-way" else draw(_windows(True, scale))
        blocks[f"{a}->{b}"].append(f"up: {_up(fwd)}")
        blocks[f"{b}->{a}"].append(f"up: {_up(bwd)}")
    for name in blocks:
        if draw(st.booleans()):
            blocks[name].append(f"delay: {draw(st.integers(0, 3))}s")
        if draw(st.booleans()):
            blocks[name].append(f"{pace}: {draw(st.sampled_from(values))}")
    for name, items in blocks.items():
        if items:
            out.append(f"    {name}: {{{', '.join(items)}}}")
    changes = []
    for at in sorted(draw(st.sets(st.integers(1, DURATION_S - 1), max_size=2))):
        key = draw(st.sampled_from([pace, "delay"]))
        value = draw(st.sampled_from(values)) if key == pace else f"{draw(st.integers(0, 3))}s"
        target = draw(st.sampled_from(["", f"{a}->{b}", f"{b}->{a}"]))
        at *= scale
        changes.append(
            f"{{at: {at}s, {key}: {value}}}" if not target else f"{{at: {at}s, {target}: {{{key}: {value}}}}}"
        )
    if changes:
        out.append(f"    changes: [{', '.join(changes)}]")
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, int]:
    """(scenario text, its clock.scale)."""
    scale = draw(st.sampled_from([1, 4, 60]))
    n = draw(st.integers(2, 4))
    pairs = [(i, j) for i in range(1, n + 1) for j in range(i + 1, n + 1)]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    lines = ["hilnet: 1", f"clock: {{scale: {scale}, duration: {DURATION_S * scale}s}}", "nodes:"]
    # node numbers need not follow the names: n1 may be ipn:3.0
    numbers = draw(st.permutations(list(range(1, n + 1))))
    lines += [f"  n{i}: {{eid: ipn:{numbers[i - 1]}.0}}" for i in range(1, n + 1)]
    lines.append("links:")
    for i, j in chosen:
        ends = (f"n{i}", f"n{j}") if draw(st.booleans()) else (f"n{j}", f"n{i}")
        lines += draw(_link(*ends, scale))
    return "\n".join(lines) + "\n", scale


def _contacts(s: Scenario) -> list[tuple[int, int, int, int, int, int]]:
    """(from, to, start s, end s, bytes/s, owlt s) by ipn number, touching equal contacts joined."""
    number = {n.name: int(n.eid[4:].split(".")[0]) for n in s.nodes}
    raw = sorted(
        (number[c.frm], number[c.to], c.start_ns, c.end_ns, c.rate, c.owlt_ns) for c in compile_plan(s).wall_contacts
    )
    out: list[list[int]] = []
    for frm, to, start, end, rate, owlt in raw:
        prev = out[-1] if out else None
        if prev and prev[:2] == [frm, to] and prev[3] == start and prev[4:] == [rate, owlt]:
            prev[3] = end
        else:
            out.append([frm, to, start, end, rate, owlt])
    ns = 1_000_000_000
    return [(f, t, a // ns, b // ns, r, o // ns) for f, t, a, b, r, o in out]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_export_then_import_gives_back_the_same_plan(generated: tuple[str, int]) -> None:
    text, scale = generated
    original = load_scenario_text(text, "gen.yaml")
    ionrc = export_ion(original, compile_plan(original))
    back = load_scenario_text(import_ion(ionrc, scale=scale, source="gen.ionrc").text, "back.yaml")
    assert back.clock.scale == scale
    assert _contacts(back) == _contacts(original)
    # and the same links: one per node pair that has a contact either way
    pairs = {tuple(sorted(c[:2])) for c in _contacts(original)}
    assert len(back.links) == len(pairs)
