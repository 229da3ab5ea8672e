"""The verdict of a run, computed from its event log alone (pure: no I/O).

``check_run(scenario, plan, events)`` folds the log into a
:class:`~hilnet.ledger.Ledger` (see docs/run.md for the record shapes), the
same account the live view and the settle test keep, and judges the
scenario's expectations:

- delivered: all / a count / a fraction of the injected bundles, per stream too;
- within: each delivery no later than ``within`` after its injection (scenario time);
- within-plan: each delivery no later than a factor of (or a slack over) the
  earliest arrival the contact plan and the faults allow for that bundle alone
  (a cut closes its link's contacts for its span, see
  :mod:`hilnet.scenario.faulted`), for the whole run and per stream;
- duplicates: how many deliveries beyond the first;
- intact: every delivered payload has the SHA-256 of what was injected;
- fidelity: every scripted link change (gate or parameters) applied within
  ``expect.fidelity`` of its time (default: :data:`~hilnet.controller.fidelity.DEFAULT_FIDELITY_NS` for
  the run's backend); the failure names the worst change first;
- lost: conservation. At the end each bundle is delivered, still in some
  store, expired with an event, or dropped by an agent that said why
  (``dropped at NODE: REASON``, a fate of its own that counts against
  delivered); anything else is lost, and the failure names where it was last
  seen. Where it was last seen at (or handed to) a node whose stack cannot
  report its store (docs/stacks.md), its fate is "not observable for this
  stack", not lost: the checks do not guess.

Each failure is one line a person understands. The plan oracle and the
schedule-fidelity figures ride along for the reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hilnet.agent.router import earliest_arrival
from hilnet.controller.fidelity import backend_of, fidelity_check, fidelity_of
from hilnet.ledger import Injection, Ledger, Observes
from hilnet.scenario.contact import Contact
from hilnet.scenario.faulted import closures, without_faults
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.units import format_duration, scenario_to_wall_ns, wall_to_scenario_ns
from hilnet.verdict import BundleRecord, CheckReport, CheckResult

# How a run-end record says the testbed broke or a person stopped the run.
BROKEN_END_REASONS = ("error", "interrupted")

# Bytes a bundle carries beyond its payload on the wire (primary block, hop
# count, previous node, CRCs, CLA framing): what the oracle adds to the size.
BUNDLE_OVERHEAD_BYTES = 64


def check_run(scenario: Scenario, plan: Plan, events: Iterable[Mapping[str, Any]]) -> CheckReport:
    """Judge a run from its event log (records as written to events.jsonl)."""
    events = list(events)
    ledger = Ledger.of(events)
    scale = scenario.clock.scale
    contacts = without_faults(
        plan.wall_contacts,
        [c.link for c in plan.capacities],
        closures(scenario),
        lambda t: scenario_to_wall_ns(t, scale),
    )
    bundles = sorted(
        (_bundle(ledger, inj, contacts, scale) for inj in ledger.injections()),
        key=lambda b: (b.injected_ns, b.tag),
    )
    stacks = {n.name: (ledger.stack_of(n.name), ledger.observes(n.name)) for n in scenario.nodes}
    streams: dict[str, tuple[int, int]] = {}
    for b in bundles:
        d, n = streams.get(b.traffic, (0, 0))
        streams[b.traffic] = (d + (1 if b.deliveries else 0), n + 1)
    fidelity = fidelity_of(events)
    results = _judge(scenario, bundles, ledger.end_ns, ledger.end_reason, stacks)
    results.append(fidelity_check(scenario, fidelity, backend_of(events)))
    if ledger.end_reason in BROKEN_END_REASONS:
        # A run that broke judges nothing it did not get to do: it fails, whatever it delivered.
        results.insert(
            0,
            CheckResult(
                "run",
                False,
                "the run completes",
                ledger.end_reason,
                (f"the run ended early ({ledger.end_reason}): {ledger.end_detail or 'no detail'}",),
            ),
        )
    return CheckReport(tuple(results), tuple(bundles), fidelity, ledger.end_ns, ledger.end_reason, streams)


def _bundle(ledger: Ledger, inj: Injection, contacts: tuple[Contact, ...], scale: float) -> BundleRecord:
    """What the ledger knows of one injection, with the earliest arrival ``contacts`` (wall time) allow beside it."""
    key = inj.key
    got = ledger.deliveries(key) if key else ()
    oracle = None
    route = earliest_arrival(
        contacts, inj.frm, inj.to, scenario_to_wall_ns(inj.t_ns, scale), inj.size + BUNDLE_OVERHEAD_BYTES
    )
    if route is not None:
        oracle = wall_to_scenario_ns(route.arrival_ns, scale)
    return BundleRecord(
        tag=inj.tag,
        traffic=inj.traffic,
        frm=inj.frm,
        to=inj.to,
        key=key,
        size=inj.size,
        injected_ns=inj.t_ns,
        expected_sha256=inj.sha256 or "",
        delivered_ns=got[0].t_ns if got else None,
        deliveries=len(got),
        intact=(all(d.sha256 == inj.sha256 for d in got) if got else None),
        plan_arrival_ns=oracle,
        expired=ledger.expired(key) if key else False,
        stored_at=ledger.holders(key) if key else (),
        sightings=ledger.sightings(key) if key else (),
        priority=inj.priority,
        ordinal=inj.ordinal,
        dropped=ledger.dropped(key) if key else ledger.refused(inj.tag),
        injection_failure=inj.failure,
        unobservable_at=ledger.unaccounted_at(key) if key and not got else (),
    )


def _name(b: BundleRecord, scenario: Scenario) -> str:
    eid = {n.name: n.eid for n in scenario.nodes}
    return f"{b.tag} ({eid.get(b.frm, b.frm)} -> {eid.get(b.to, b.to)})"


# node -> (the stack that played it, what that stack observes), from the run-start record
Stacks = Mapping[str, tuple[str, Observes]]


def _blind(b: BundleRecord, stacks: Stacks) -> str:
    """Why the fate of ``b`` cannot be told, naming each node and its stack; empty when it can."""
    if not b.unobservable_at:
        return ""
    where = ", ".join(f"{n} ({_stack(stacks, n)})" for n in b.unobservable_at)
    return f"; whether it is still stored at {where} is not observable for this stack"


def _stack(stacks: Stacks, node: str) -> str:
    return stacks[node][0] if node in stacks else "hilnet"


def _where(b: BundleRecord, scenario: Scenario, stacks: Stacks | None = None) -> str:
    fate, drop = b.fate, b.dropped
    if drop is not None and fate in ("dropped", "refused"):
        # Said before the last sighting: a node drops a bundle before the previous hop logs its ack.
        return f"{fate} at {drop.node}: {drop.reason} (at {format_duration(drop.t_ns)})"
    if fate == "not-injected":
        return f"not injected: {b.injection_failure or 'its injection failed'}"
    s = b.last_seen
    if s is None:
        return "never seen by an agent after injection"
    if s.event == "sent":
        to = {n.eid: n.name for n in scenario.nodes}.get(s.peer or "", s.peer or "?")
        cla = (s.cla or "?").upper()
        if stacks and s.node in stacks and not stacks[s.node][1].sees("acked"):
            # The stack lets a bundle go without saying whether the next hop acknowledged it.
            return (
                f"last sent by {s.node} over {cla} to {to} at {format_duration(s.t_ns)} (whether {to} acknowledged "
                f"it is not observable for this stack: {_stack(stacks, s.node)})"
            )
        # The convergence layer has no acknowledgement: the loss is on its account.
        return f"lost after an unacknowledged {cla} send from {s.node} to {to} at {format_duration(s.t_ns)}"
    where = {
        "stored": "last stored at",
        "forwarded": "last forwarded by",
        "acked": "last acknowledged by the next hop of",
        "received": "last received at",
        "refused": "refused at",
        "dropped": "dropped at",
    }.get(s.event, f"last {s.event} at")
    held = f"; still stored at {', '.join(b.stored_at)}" if fate == "stored" else ""
    return f"{where} {s.node} at {format_duration(s.t_ns)}{held}"


def _judge(
    scenario: Scenario,
    bundles: list[BundleRecord],
    end_ns: int,
    end_reason: str = "",
    stacks: Stacks | None = None,
) -> list[CheckResult]:
    ex = scenario.expect
    stacks = stacks or {}
    delivered = [b for b in bundles if b.deliveries]
    results = [_delivered(scenario, bundles, end_ns, end_reason, stacks)]
    if ex.within_ns is not None:
        results.append(_within(scenario, delivered, ex.within_ns))
    if ex.within_plan is not None:
        results.append(_within_plan(scenario, delivered, ex.within_plan))
    results += _stream_checks(scenario, delivered)
    if ex.duplicates is not None:
        dups = sum(max(0, b.deliveries - 1) for b in bundles)
        lines = tuple(f"{_name(b, scenario)} delivered {b.deliveries} times" for b in bundles if b.deliveries > 1)
        results.append(CheckResult("duplicates", dups <= ex.duplicates, f"<= {ex.duplicates}", str(dups), lines))
    if ex.intact:
        bad = tuple(
            f"{_name(b, scenario)} arrived with a different SHA-256 than was sent"
            for b in delivered
            if b.intact is False
        )
        results.append(
            CheckResult(
                "intact",
                not bad,
                "every payload's SHA-256 matches",
                f"{len(delivered) - len(bad)} of {len(delivered)} intact",
                bad,
            )
        )
    if ex.lost is not None:
        results.append(_lost(scenario, bundles, ex.lost, stacks))
    return results


def _lost(scenario: Scenario, bundles: list[BundleRecord], allowed: int, stacks: Stacks) -> CheckResult:
    """Conservation, over what the stacks can account for; the rest is named "not observable", never lost."""
    lost = [b for b in bundles if b.fate == "lost"]
    blind = [b for b in bundles if b.fate == "not-observable"]
    lines = [
        f"{_name(b, scenario)} is lost: {_where(b, scenario, stacks)}; not delivered, in no store, no expiry event"
        for b in lost
    ]
    passed = len(lost) <= allowed
    actual = str(len(lost))
    if blind:
        # In the figure whether or not the check fails (the bundle table names each one's fate).
        actual += f" ({len(blind)} not observable for this stack)"
        if not passed:
            lines += [f"{_name(b, scenario)}: {_where(b, scenario, stacks)}{_blind(b, stacks)}" for b in blind]
    return CheckResult("lost", passed, f"<= {allowed}", actual, tuple(lines))


def _delivered(
    scenario: Scenario, bundles: list[BundleRecord], end_ns: int, end_reason: str, stacks: Stacks
) -> CheckResult:
    ex = scenario.expect
    # The traffic section's count, not just what got injected: a run that ended
    # before injecting everything must not pass "all" over what it did inject.
    n = max(len(bundles), scenario.bundles_total())
    delivered = sum(1 for b in bundles if b.deliveries)
    if ex.delivered == "all":
        want, want_text = n, f"all {n}"
    elif isinstance(ex.delivered, float):
        want = -(-int(round(ex.delivered * n * 1e9)) // 10**9)  # ceil without float noise
        want_text = f">= {ex.delivered:.0%} ({want} of {n})"
    else:
        want, want_text = int(ex.delivered), f">= {ex.delivered}"
    missing = [
        f"{_name(b, scenario)} {_where(b, scenario, stacks)}; not delivered by {format_duration(end_ns)}{_blind(b, stacks)}"
        for b in bundles
        if not b.deliveries
    ]
    if n > len(bundles):
        missing.append(
            f"{n - len(bundles)} bundles of the traffic were never injected: the run ended "
            f"({end_reason or 'unknown'}) at {format_duration(end_ns)}"
        )
    return CheckResult(
        "delivered", delivered >= want, want_text, f"{delivered} of {n}", tuple(missing) if delivered < want else ()
    )


def _stream_checks(scenario: Scenario, delivered: list[BundleRecord]) -> list[CheckResult]:
    """The expectations a traffic stream states for itself, named ``within tweets``, ``within-plan tweets``."""
    out = []
    for t in scenario.traffic:
        if t.expect is None:
            continue
        mine = [b for b in delivered if b.traffic == t.name]
        if t.expect.within_ns is not None:
            out.append(_within(scenario, mine, t.expect.within_ns, f"within {t.name}"))
        if t.expect.within_plan is not None:
            out.append(_within_plan(scenario, mine, t.expect.within_plan, f"within-plan {t.name}"))
    return out


def _within(scenario: Scenario, delivered: list[BundleRecord], within_ns: int, name: str = "within") -> CheckResult:
    latencies = [(b, b.latency_ns) for b in delivered if b.latency_ns is not None]
    late = tuple(
        f"{_name(b, scenario)} took {format_duration(lat)}, over {format_duration(within_ns)}"
        for b, lat in latencies
        if lat > within_ns
    )
    worst = max((lat for _, lat in latencies), default=None)
    actual = "max " + (format_duration(worst) if worst is not None else "n/a")
    return CheckResult(name, not late, f"<= {format_duration(within_ns)}", actual, late)


def _within_plan(
    scenario: Scenario, delivered: list[BundleRecord], within_plan: float | int, name: str = "within-plan"
) -> CheckResult:
    """``within_plan``: a float is a factor of the plan's best latency, an int a slack in ns over its arrival."""
    late = []
    for b in delivered:
        if b.plan_arrival_ns is None or b.delivered_ns is None:
            continue
        if isinstance(within_plan, float):
            limit: float = b.injected_ns + within_plan * max(1, b.plan_arrival_ns - b.injected_ns)
            text = f"{within_plan:g}x the plan's best latency"
        else:
            limit = b.plan_arrival_ns + within_plan
            text = f"plan's earliest arrival + {format_duration(within_plan)}"
        if b.delivered_ns > limit:
            late.append(
                f"{_name(b, scenario)} arrived at {format_duration(b.delivered_ns)}; "
                f"the plan and the faults allowed {format_duration(b.plan_arrival_ns)}, limit {text}"
            )
    expected = (
        f"<= {within_plan:g}x plan" if isinstance(within_plan, float) else f"<= plan + {format_duration(within_plan)}"
    )
    worst = max((b.lateness_ns for b in delivered if b.lateness_ns is not None), default=None)
    actual = f"{len(late)} late" + (f", max {_signed(worst)}" if worst is not None else "")
    return CheckResult(name, not late, expected, actual, tuple(late))


def _signed(ns: int) -> str:
    return ("+" if ns >= 0 else "-") + format_duration(abs(ns))
