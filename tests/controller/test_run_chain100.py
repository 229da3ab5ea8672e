"""The 100-node chain of issue 16, end to end on both virtual backends (slow: one run each).

A generated chain (``hilnet.scenario.generate``): 10 Mbit/s Ethernet links with 5 ms
delay, five 1 KiB bundles end to end over 99 hops. Every bundle must arrive (the plan
gives them a hop limit that covers the path), and each link's change must be applied
within the default 1 ms: the links that open at scenario time 0 are set before the
run's start, however long arming 99 links and configuring 100 agents took.
"""

from __future__ import annotations

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary

from hilnet.scenario.generate import chain

NODES = 100


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_100_node_chain_delivers_every_bundle_on_time(tmp_path, backend):
    leaks = LeakWatch()
    sc = tmp_path / "chain-100.yaml"
    sc.write_text(chain(NODES))
    out = tmp_path / "run"
    p = hilnet_run(sc, out, backend, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = summary(out)
    results = {r["name"]: r for r in s["results"]}
    assert results["delivered"]["actual"] == "5 of 5" and results["lost"]["actual"] == "0", results
    assert results["fidelity"]["passed"] and s["fidelity"]["edges"] == 2 * (NODES - 1), results["fidelity"]
    assert s["fidelity"]["p99_ns"] < 1_000_000, s["fidelity"]
    evs = events(out)
    start = next(e for e in evs if e["event"] == "run-start")
    assert start["backend"] == backend
    # every agent was configured before the start: none answered its start late
    late = [e for e in evs if e["event"] == "log" and "after it" in str(e.get("message"))]
    assert not late, late
    injected = [e for e in evs if e["event"] == "inject"]
    assert len(injected) == 5 and all(e["t_ns"] < 6 * 10**9 for e in injected), injected  # each near its time
    leaks.check(out)
