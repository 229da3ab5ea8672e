"""A synthetic run log: what the controller, agents and links of a run would write, without running.

Bundles walk their static route (``plan.routes``) hop by hop, waiting at a node
until the next link is in one of its windows and not cut; each hop takes the
link's delay plus ``hop_ns``. Options turn chosen bundles into failures:
``lose`` (acked away by the first hop that never stores it), ``corrupt``
(delivered with a wrong SHA-256), ``duplicate`` (delivered twice).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hilnet.scenario.model import Crash, Cut, ErrorBurst, Scenario
from hilnet.scenario.plan import Plan

SECOND = 1_000_000_000


def _up_at(scenario: Scenario, link: str, t: int) -> int | None:
    """Earliest scenario time >= t when ``link`` is in a window and not cut; None if never."""
    lk = scenario.link(link)
    windows = [(w.start_ns, w.end_ns) for w in lk.windows] or [(0, scenario.clock.duration_ns)]
    cuts = [(f.at_ns, f.at_ns + f.for_ns) for f in scenario.faults if isinstance(f, Cut) and f.link == link]
    for _ in range(100):
        inside = [w for w in windows if w[0] <= t < w[1]]
        if not inside:
            later = [w[0] for w in windows if w[0] > t]
            if not later:
                return None
            t = min(later)
            continue
        cut = [c for c in cuts if c[0] <= t < c[1]]
        if cut:
            t = cut[0][1]
            continue
        return t
    return None


def synth_events(
    scenario: Scenario,
    plan: Plan,
    *,
    lose: set[str] = frozenset(),
    corrupt: set[str] = frozenset(),
    duplicate: set[str] = frozenset(),
    hop_ns: int = 2 * SECOND,
    end_reason: str = "settled",
    fidelity_error_ns: int = 40_000,
) -> list[dict]:
    scale = scenario.clock.scale
    eid = {n.name: n.eid for n in scenario.nodes}
    routes = {r.traffic: r for r in plan.routes}
    ev: list[dict] = []

    def add(t: int, src: str, event: str, **fields) -> None:
        ev.append({"t_ns": t, "src": src, "event": event, **fields})

    add(
        0,
        "controller",
        "run-start",
        name=scenario.name,
        scenario="scenario.yaml",
        scale=scale,
        duration_ns=scenario.clock.duration_ns,
        seed=scenario.seed,
        backend="loopback",
        nodes=eid,
        links=[{"name": lk.name, "a": lk.a, "b": lk.b, "medium": lk.medium} for lk in scenario.links],
    )
    k = 0
    for lk in scenario.links:
        edges = [(w.start_ns, "up") for w in lk.windows] + [(w.end_ns, "down") for w in lk.windows]
        edges = edges or [(0, "up")]
        edges += [(c.at_ns, "change") for c in lk.changes]
        for t, what in sorted(edges):
            for direction in ("a->b", "b->a"):
                k += 1
                intended = round(t / scale)
                add(
                    t,
                    "link",
                    what,
                    link=lk.name,
                    direction=direction,
                    intended_wall_ns=intended,
                    applied_wall_ns=intended + fidelity_error_ns * (1 + k % 3),
                )
    for f in scenario.faults:
        if isinstance(f, Cut):
            add(f.at_ns, "controller", "cut", link=f.link)
            add(f.at_ns + f.for_ns, "controller", "restore", link=f.link)
        elif isinstance(f, Crash):
            add(f.at_ns, "controller", "crash", node=f.node)
            if f.restart_after_ns is not None:
                add(f.at_ns + f.restart_after_ns, "controller", "restart", node=f.node)
        elif isinstance(f, ErrorBurst):
            add(f.at_ns, "controller", "burst-start", link=f.link, ber=f.ber)
            add(f.at_ns + f.for_ns, "controller", "burst-end", link=f.link)
    for tr in scenario.traffic:
        route = routes[tr.name]
        for seq, t0 in enumerate(tr.times_ns()):
            tag = f"{tr.name}#{seq}"
            key = f"{eid[tr.frm]}/{1700000000000 + t0 // 1_000_000}/{seq}"
            sha = hashlib.sha256(f"{scenario.seed}:{tag}".encode()).hexdigest()
            add(
                t0,
                "controller",
                "inject",
                tag=tag,
                traffic=tr.name,
                index=seq,
                frm=tr.frm,
                to=tr.to,
                size=tr.size,
                sha256=sha,
                bundle=key,
                lifetime_ns=tr.lifetime_ns,
                priority=tr.priority,
                ordinal=tr.ordinal,
            )
            add(
                t0,
                "agent",
                "stored",
                node=tr.frm,
                bundle=key,
                size=tr.size,
                store_bundles=1,
                store_bytes=tr.size,
                tag=tag,
            )
            t = t0
            for a, b, link in zip(route.path, route.path[1:], route.links):
                start = _up_at(scenario, link, t)
                if start is None:
                    break  # stays stored at a: the run ends with it there
                params = scenario.link(link).direction(a)
                wire_s = tr.size / params.wire_bytes_per_s if params.wire_bytes_per_s else 0
                # delay and serialisation are physics (wall time); the scenario sees them times the scale
                t = start + hop_ns + round((params.delay_ns + wire_s * SECOND) * scale)
                add(start, "agent", "forwarded", node=a, bundle=key, to=eid[b], cla="tcpcl", size=tr.size, tag=tag)
                add(
                    t,
                    "agent",
                    "received",
                    node=b,
                    bundle=key,
                    source=eid[tr.frm],
                    dest=eid[tr.to],
                    size=tr.size,
                    tag=tag,
                )
                if tag in lose:
                    add(t + 1000, "agent", "acked", node=a, bundle=key, by=eid[b], cla="tcpcl", tag=tag)
                    break
                add(
                    t,
                    "agent",
                    "stored",
                    node=b,
                    bundle=key,
                    size=tr.size,
                    store_bundles=1,
                    store_bytes=tr.size,
                    tag=tag,
                )
                add(t + 1000, "agent", "acked", node=a, bundle=key, by=eid[b], cla="tcpcl", tag=tag)
                if b == tr.to:
                    got = "0" * 64 if tag in corrupt else sha
                    for _ in range(2 if tag in duplicate else 1):
                        add(
                            t + 2000,
                            "agent",
                            "delivered",
                            node=b,
                            bundle=key,
                            source=eid[tr.frm],
                            dest=eid[tr.to],
                            size=tr.size,
                            sha256=got,
                            tag=tag,
                        )
    end = max(e["t_ns"] for e in ev) + SECOND
    for lk in scenario.links:
        add(
            end,
            "controller",
            "link-stats",
            link=lk.name,
            stats={
                "a->b": {
                    "units_in": 10,
                    "bytes_in": 12000,
                    "units_out": 9,
                    "bytes_out": 11000,
                    "drops": {"gate": 1},
                    "bits_flipped": 3,
                    "up": True,
                },
                "b->a": {
                    "units_in": 5,
                    "bytes_in": 400,
                    "units_out": 5,
                    "bytes_out": 400,
                    "drops": {},
                    "bits_flipped": 0,
                    "up": True,
                },
            },
        )
    add(end, "controller", "run-end", reason=end_reason, detail="")
    ev.sort(key=lambda e: e["t_ns"])  # stable: records of one instant keep their order
    for e in ev:
        e["wall_ns"] = round(e["t_ns"] / scale)
        if e["src"] == "agent":
            e["t_agent_ns"] = e["wall_ns"] + 123
    return ev


def write_run(folder: Path, scenario_text: str, events: list[dict]) -> Path:
    """A run folder with scenario.yaml and events.jsonl; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(scenario_text, encoding="utf-8")
    with open(folder / "events.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
    return folder
