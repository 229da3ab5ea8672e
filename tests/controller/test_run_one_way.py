"""One-way windows end to end, on both virtual backends: ``scenarios/iss-one-way.yaml``.

The ISS downlink (TCPCL over Ethernet) and the relay's serial leg to the ground are up
one way only at first. Tweets from the ISS must reach the ground while nothing may go
back (their acknowledgements do: the CLs need them), and the ground's command must wait
in stores for the uplink windows: wsc->tdrs-e opens at 6m, tdrs-e->iss at 8m.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_e2e_harness import BACKENDS, LeakWatch, events, hilnet_run, summary

from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "iss-one-way.yaml"
MIN = 60_000_000_000


def test_the_plan_has_each_direction_s_own_contacts() -> None:
    plan = compile_plan(load_scenario(SCENARIO))
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for c in plan.contacts:
        spans.setdefault((c.frm, c.to), []).append((c.start_ns // MIN, c.end_ns // MIN))
    assert spans == {
        ("iss", "tdrs-e"): [(0, 12), (15, 20)],
        ("tdrs-e", "iss"): [(8, 12), (15, 20)],
        ("wsc", "tdrs-e"): [(6, 20)],
        ("tdrs-e", "wsc"): [(0, 20)],
    }
    assert not plan.warnings


@pytest.mark.parametrize("backend", BACKENDS)
def test_bundles_flow_one_way_and_the_other_way_waits(tmp_path: Path, backend: str) -> None:
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(SCENARIO, out, backend, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True and s["backend"] == backend
    bundles = {b["tag"]: b for b in s["bundles"]}
    assert set(bundles) == {"tweets#1", "tweets#2", "tweets#3", "command#1"}
    assert all(b["deliveries"] == 1 and b["intact"] for b in bundles.values())
    # Down while both uplinks were still shut: TCPCL and the serial CL worked one way.
    for tag in ("tweets#1", "tweets#2", "tweets#3"):
        assert bundles[tag]["delivered_ns"] < 6 * MIN, (tag, bundles[tag])
    # The command waited for wsc->tdrs-e (6m), then for tdrs-e->iss (8m), in tdrs-e's store.
    command = bundles["command#1"]
    assert command["delivered_ns"] >= 8 * MIN, command
    assert "tdrs-e" in command["path"]
    evs = events(out)
    # The medium was open both ways from the start (the return path), though tdrs-e->iss had no contact.
    opened = {
        e.get("direction")
        for e in evs
        if e.get("src") == "link" and e.get("link") == "iss-tdrs-e" and e.get("event") == "up" and e["t_ns"] < MIN
    }
    assert opened == {"a->b", "b->a"}, opened
    # The tweets' acknowledgements came back while tdrs-e->iss carried no bundles (before 8m),
    # so the ISS released them: the return path worked for the CL.
    acked = [e["t_ns"] for e in evs if e.get("node") == "iss" and e.get("event") == "acked"]
    assert len(acked) == 3 and max(acked) < 8 * MIN, acked  # the ISS acks only tweets: the command ends there
    # The command left wsc no earlier than its uplink opened.
    sent = [e["t_ns"] for e in evs if e.get("node") == "wsc" and e.get("event") == "forwarded"]
    assert sent and min(sent) >= 6 * MIN, sent
    leaks.check(out)
