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

One-way windows export as contacts one way only, as ION writes them.
Import is :mod:`hilnet.scenario.ion_import` (reading ionrc text is
:mod:`hilnet.scenario.ionrc`); :func:`raw_rate_for_goodput` is the rule both
sides share.
"""

from __future__ import annotations

import math
import re

from hilnet.bundle.eid import parse_eid
from hilnet.scenario.model import Scenario
from hilnet.scenario.overhead import efficiency
from hilnet.scenario.plan import Plan
from hilnet.units import format_duration

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
    if scenario.clock.compress == "all":
        lines.append(f"# clock.compress: all: OWLT divided by {scenario.clock.scale:g} and rates multiplied by it too")
    if scenario.clock.epoch is not None:
        lines.append(f"# +0 is the scenario's clock.epoch {scenario.clock.epoch} (UTC)")
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


def raw_rate_for_goodput(goodput: int) -> int:
    """The smallest ethernet rate (bit/s) whose plan goodput, rounded down, is ``goodput`` bytes/s."""
    eff = efficiency("ethernet")
    raw = math.ceil(goodput * 8 / eff)
    while raw > 1 and int((raw - 1) / 8 * eff) >= goodput:
        raw -= 1
    while int(raw / 8 * eff) < goodput:
        raw += 1
    return raw
