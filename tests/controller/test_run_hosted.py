"""``hilnet run`` with hosted agents: 50 nodes chosen automatically into one host process, one crashed alone."""

from __future__ import annotations

import json
from pathlib import Path

from hilnet.scenario.generate import Shape, grid
from hilnet.testbed.hosting import HOST_FROM, NODES_PER_HOST, place_agents
from tests.controller.run_e2e_harness import hilnet_run

CRASHED = "n2-5"


def test_fifty_hosted_nodes_pass_and_a_crash_kills_exactly_one(tmp_path: Path) -> None:
    text = grid(5, 10, Shape(count=5, start="1s", every="1s", duration="1m", lifetime="1m"))
    text += f"faults:\n  - {{at: 2500ms, crash: {CRASHED}, restart-after: 1s}}\n"
    scenario = tmp_path / "grid50.yaml"
    scenario.write_text(text)
    out = tmp_path / "run"
    done = hilnet_run(scenario, out, "loopback", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    placement = next(r for r in records if r["event"] == "agents")
    assert list(placement["hosts"]) == ["host-1"] and len(placement["hosts"]["host-1"]) == 50
    # every node is in the one host process: one pid in every ready event
    readies = [r for r in records if r["event"] == "ready"]
    assert len({r["pid"] for r in readies}) == 1
    # the crash killed exactly one node: only it started twice, and only its peers saw sessions end uncleanly
    started = {}
    for r in readies:
        started[r["node"]] = started.get(r["node"], 0) + 1
    assert {n for n, k in started.items() if k > 1} == {CRASHED}
    # From the moment the crash was due: the controller's "crash" record is written once the kill
    # has returned, and the peers may see their sessions die a few milliseconds before that.
    crash_due = 2_500_000_000  # the fault's 2500ms at scale 1
    assert next(r["wall_ns"] for r in records if r["event"] == "crash") >= crash_due
    dropped = {
        r["node"]
        for r in records
        if r["event"] == "session-down" and r["wall_ns"] >= crash_due and not r["detail"].get("clean", True)
    }
    assert dropped and dropped <= {"n1-5", "n3-5", "n2-4", "n2-6"}, dropped
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] is True


def test_the_choice_is_automatic_on_loopback_only() -> None:
    names = [f"n{i}" for i in range(HOST_FROM + NODES_PER_HOST)]
    assert not place_agents("loopback", names[: HOST_FROM - 1]).hosted
    big = place_agents("loopback", names)
    assert big.hosted and len(big.hosts) == 2 and sum(len(v) for v in big.hosts.values()) == len(names)
    assert "nodes hosted in 2 processes" in big.describe(len(names))
    assert not place_agents("netns", names).hosted
    assert place_agents("loopback", names[:3], "hosted").hosted
    assert not place_agents("loopback", names, "process").hosted
