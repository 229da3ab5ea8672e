"""The verdict of a run, computed from its event log alone (pure: no I/O).

``check_run(scenario, plan, events)`` follows every injected bundle through
the log (see docs/run.md for the record shapes) and judges the scenario's
expectations:

- delivered: all / a count / a fraction of the injected bundles, per stream too;
- within: each delivery no later than ``within`` after its injection (scenario time);
- within-plan: each delivery no later than a factor of (or a slack over) the
  earliest arrival the contact plan allows for that bundle alone;
- duplicates: how many deliveries beyond the first;
- intact: every delivered payload has the SHA-256 of what was injected;
- lost: conservation. At the end each bundle is delivered, still in some
  store, or expired with an event; anything else is lost, and the failure
  names where it was last seen.

Each failure is one line a person understands. The plan oracle and the
schedule-fidelity figures ride along for the reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from hilnet.agent.router import earliest_arrival
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.units import format_duration, scenario_to_wall_ns, wall_to_scenario_ns
from hilnet.verdict import BundleRecord, CheckReport, CheckResult, EdgeTiming, Fidelity, Sighting

# How a run-end record says the testbed broke or a person stopped the run.
BROKEN_END_REASONS = ("error", "interrupted")

# Bytes a bundle carries beyond its payload on the wire (primary block, hop
# count, previous node, CRCs, CLA framing): what the oracle adds to the size.
BUNDLE_OVERHEAD_BYTES = 64


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def fidelity_of(events: Iterable[Mapping]) -> Fidelity:
    """Schedule fidelity: every link gate or parameter change, intended vs applied."""
    edges = []
    for e in events:
        if e.get("src") == "link" and e.get("event") in ("up", "down", "change") and "intended_wall_ns" in e:
            edges.append(
                EdgeTiming(e["link"], e.get("direction", ""), e["event"], e["intended_wall_ns"], e["applied_wall_ns"])
            )
    errors = [abs(x.error_ns) for x in edges]
    return Fidelity(tuple(edges), _percentile(errors, 0.5), _percentile(errors, 0.99), max(errors) if errors else None)


def check_run(scenario: Scenario, plan: Plan, events: Iterable[Mapping]) -> CheckReport:
    """Judge a run from its event log (records as written to events.jsonl)."""
    events = list(events)
    scale = scenario.clock.scale
    injected: dict[str, dict] = {}  # tag -> inject record
    by_key: dict[str, str] = {}  # bundle key -> tag
    deliveries: dict[str, list[dict]] = defaultdict(list)
    sightings: dict[str, list[Sighting]] = defaultdict(list)
    holding: dict[str, set[str]] = defaultdict(set)  # key -> nodes storing it now
    expired: set[str] = set()
    end_ns, end_reason, end_detail = 0, "unknown", None
    for e in events:
        kind = e.get("event")
        t = int(e.get("t_ns", 0))
        end_ns = max(end_ns, t)
        src = e.get("src")
        if src == "controller":
            if kind in ("inject", "inject-failed"):
                injected[e["tag"]] = e
                if e.get("bundle"):
                    by_key[e["bundle"]] = e["tag"]
            elif kind == "run-end":
                end_reason = e.get("reason", end_reason)
                end_detail = e.get("detail")
            elif kind == "crash":
                # A killed agent keeps its store on disk: what it held is still held.
                pass
            continue
        if src != "agent":
            continue
        key = e.get("bundle")
        if key is None:
            continue
        node = e.get("node") or "?"
        if kind in ("stored", "forwarded", "acked", "delivered", "expired", "received", "refused", "dropped"):
            sightings[key].append(Sighting(node, kind, t))
        if kind == "stored":
            holding[key].add(node)
        elif kind in ("acked", "delivered", "expired", "deleted"):
            holding[key].discard(node)
        if kind == "delivered":
            deliveries[key].append(e)
        elif kind == "expired":
            expired.add(key)

    bundles = []
    for tag, inj in injected.items():
        key = inj.get("bundle")
        got = deliveries.get(key, []) if key else []
        t_inj = int(inj.get("t_ns", 0))
        oracle = None
        route = earliest_arrival(
            plan.wall_contacts,
            inj["frm"],
            inj["to"],
            scenario_to_wall_ns(t_inj, scale),
            int(inj["size"]) + BUNDLE_OVERHEAD_BYTES,
        )
        if route is not None:
            oracle = wall_to_scenario_ns(route.arrival_ns, scale)
        bundles.append(
            BundleRecord(
                tag=tag,
                traffic=inj.get("traffic", tag.split("#")[0]),
                frm=inj["frm"],
                to=inj["to"],
                key=key,
                size=int(inj["size"]),
                injected_ns=t_inj,
                expected_sha256=inj.get("sha256", ""),
                delivered_ns=int(got[0]["t_ns"]) if got else None,
                deliveries=len(got),
                intact=(all(d.get("sha256") == inj.get("sha256") for d in got) if got else None),
                plan_arrival_ns=oracle,
                expired=key in expired if key else False,
                stored_at=tuple(sorted(holding.get(key, ()))) if key else (),
                sightings=tuple(sightings.get(key, ())) if key else (),
            )
        )
    bundles.sort(key=lambda b: (b.injected_ns, b.tag))
    streams: dict[str, tuple[int, int]] = {}
    for b in bundles:
        d, n = streams.get(b.traffic, (0, 0))
        streams[b.traffic] = (d + (1 if b.deliveries else 0), n + 1)
    results = _judge(scenario, bundles, end_ns, end_reason)
    if end_reason in BROKEN_END_REASONS:
        # A run that broke judges nothing it did not get to do: it fails, whatever it delivered.
        results.insert(
            0,
            CheckResult(
                "run",
                False,
                "the run completes",
                end_reason,
                (f"the run ended early ({end_reason}): {end_detail or 'no detail'}",),
            ),
        )
    return CheckReport(tuple(results), tuple(bundles), fidelity_of(events), end_ns, end_reason, streams)


def _name(b: BundleRecord, scenario: Scenario) -> str:
    eid = {n.name: n.eid for n in scenario.nodes}
    return f"{b.tag} ({eid.get(b.frm, b.frm)} -> {eid.get(b.to, b.to)})"


def _where(b: BundleRecord) -> str:
    s = b.last_seen
    if s is None:
        return "never seen by an agent after injection" if b.key else "its injection failed"
    verb = {
        "stored": "last stored",
        "forwarded": "last forwarded from",
        "acked": "last acked away from",
        "received": "last received",
        "refused": "refused",
        "dropped": "dropped",
    }.get(s.event, f"last {s.event}")
    return f"{verb} at {s.node} at {format_duration(s.t_ns)}"


def _judge(scenario: Scenario, bundles: list[BundleRecord], end_ns: int, end_reason: str = "") -> list[CheckResult]:
    ex = scenario.expect
    # The traffic section's count, not just what got injected: a run that ended
    # before injecting everything must not pass "all" over what it did inject.
    n = max(len(bundles), scenario.bundles_total())
    delivered = [b for b in bundles if b.deliveries]
    results: list[CheckResult] = []
    # delivered
    if ex.delivered == "all":
        want, want_text = n, f"all {n}"
    elif isinstance(ex.delivered, float):
        want = -(-int(round(ex.delivered * n * 1e9)) // 10**9)  # ceil without float noise
        want_text = f">= {ex.delivered:.0%} ({want} of {n})"
    else:
        want, want_text = int(ex.delivered), f">= {ex.delivered}"
    missing = [
        f"{_name(b, scenario)} {_where(b)}; not delivered by {format_duration(end_ns)}"
        for b in bundles
        if not b.deliveries
    ]
    if n > len(bundles):
        missing.append(
            f"{n - len(bundles)} bundles of the traffic were never injected: the run ended "
            f"({end_reason or 'unknown'}) at {format_duration(end_ns)}"
        )
    results.append(
        CheckResult(
            "delivered",
            len(delivered) >= want,
            want_text,
            f"{len(delivered)} of {n}",
            tuple(missing) if len(delivered) < want else (),
        )
    )
    if ex.within_ns is not None:
        late = [
            f"{_name(b, scenario)} took {format_duration(b.latency_ns)}, over {format_duration(ex.within_ns)}"
            for b in delivered
            if b.latency_ns > ex.within_ns
        ]
        worst = max((b.latency_ns for b in delivered), default=None)
        results.append(
            CheckResult(
                "within",
                not late,
                f"<= {format_duration(ex.within_ns)}",
                "max " + (format_duration(worst) if worst is not None else "n/a"),
                tuple(late),
            )
        )
    if ex.within_plan is not None:
        late = []
        for b in delivered:
            if b.plan_arrival_ns is None:
                continue
            if isinstance(ex.within_plan, float):
                limit = b.injected_ns + ex.within_plan * max(1, b.plan_arrival_ns - b.injected_ns)
                text = f"{ex.within_plan:g}x the plan's best latency"
            else:
                limit = b.plan_arrival_ns + ex.within_plan
                text = f"plan's earliest arrival + {format_duration(ex.within_plan)}"
            if b.delivered_ns > limit:
                late.append(
                    f"{_name(b, scenario)} arrived at {format_duration(b.delivered_ns)}; "
                    f"the plan allowed {format_duration(b.plan_arrival_ns)}, limit {text}"
                )
        expected = (
            f"<= {ex.within_plan:g}x plan"
            if isinstance(ex.within_plan, float)
            else f"<= plan + {format_duration(ex.within_plan)}"
        )
        results.append(CheckResult("within-plan", not late, expected, f"{len(late)} late", tuple(late)))
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
        lost = [b for b in bundles if b.fate == "lost"]
        lines = tuple(
            f"{_name(b, scenario)} is lost: {_where(b)}; not delivered, in no store, no expiry event" for b in lost
        )
        results.append(CheckResult("lost", len(lost) <= ex.lost, f"<= {ex.lost}", str(len(lost)), lines))
    return results
