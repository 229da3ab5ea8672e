"""``scenarios/mars-relay.yaml``: a Martian day and a half in four minutes, and why it needs LTP.

The scenario runs with ``clock.compress: all``: 20 light-minutes between the orbiter
and the Deep Space Network are 4 wall seconds, and every pass carries what it carries
at Mars. With LTP on that hop it passes on both virtual backends. With TCPCLv4 forced
there (the same file, its ``cl: ltp`` edited) nothing crosses: a TCP handshake, the
contact headers and SESS_INIT need three round trips, two hours, and the plan says
so before the run; every bundle from the rover ends stored in the orbiter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from run_e2e_harness import BACKENDS, PYTHON, LeakWatch, hilnet_run, summary

from hilnet.errors import ScenarioErrors
from hilnet.scenario.load import load_scenario, load_scenario_text
from hilnet.scenario.plan import compile_plan

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "mars-relay.yaml"
S = 1_000_000_000
MIN = 60 * S
RUN_TIMEOUT_S = 480  # 4 minutes of wall time, twice over for a loaded host


def test_the_plan_runs_twenty_light_minutes_in_four_wall_seconds() -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.clock.compress == "all"
    assert scenario.link("mro-dsn").convergence_layer == "ltp"
    plan = compile_plan(scenario)
    assert plan.warnings == ()
    deep = {(c.frm, c.to, c.owlt_ns) for c, cap in zip(plan.wall_contacts, plan.capacities) if cap.link == "mro-dsn"}
    assert {owlt for _, _, owlt in deep} == {4 * S}
    assert {owlt for c in plan.contacts if (owlt := c.owlt_ns) >= MIN} == {20 * MIN}  # reality's light time
    # A 75-minute X-band window at 1 Mbit/s holds what it holds at Mars (~530 MB, before overhead).
    down = [cap for cap in plan.capacities if (cap.link, cap.frm) == ("mro-dsn", "mro")]
    assert all(cap.capacity_bytes <= 1_000_000 // 8 * (cap.end_ns - cap.start_ns) // S for cap in down)
    assert down[0].capacity_bytes > 0.9 * 1_000_000 // 8 * 75 * 60


def test_a_faster_replay_is_refused_at_the_uhf_rate() -> None:
    text = SCENARIO.read_text().replace("scale: 300,", "scale: 400,")
    with pytest.raises(ScenarioErrors, match=r"link 'rover-mro' rover->mro rate 2Mbit/s runs at 800Mbit/s"):
        load_scenario_text(text, "mars-relay.yaml")


@pytest.mark.parametrize("backend", BACKENDS)
def test_mars_relay_passes(tmp_path: Path, backend: str) -> None:
    leaks = LeakWatch()
    out = tmp_path / "run"
    p = hilnet_run(SCENARIO, out, backend, timeout=RUN_TIMEOUT_S)
    assert p.returncode == 0, p.stdout + p.stderr
    s = summary(out)
    assert s["passed"] is True and s["backend"] == backend
    bundles = s["bundles"]
    assert len(bundles) == 17 and all(b["deliveries"] == 1 and b["intact"] for b in bundles)
    for b in bundles:  # nothing beats the light time: mro -> dsn alone is 20 minutes
        assert b["latency_ns"] >= 20 * MIN, b
    plan = next(b for b in bundles if b["tag"] == "sol-plan#1")
    assert plan["delivered_ns"] >= 12 * 60 * MIN + 30 * MIN  # it waited in the orbiter for the second pass
    leaks.check(out)


def test_tcpcl_on_the_deep_space_hop_fails_and_says_why(tmp_path: Path) -> None:
    text = SCENARIO.read_text()
    assert text.count("\n    cl: ltp\n") == 1  # the deep-space hop's key
    forced = tmp_path / "mars-relay-tcpcl.yaml"
    forced.write_text(text.replace("\n    cl: ltp\n", "\n    cl: tcpcl\n"))
    out = tmp_path / "run"
    p = subprocess.run(
        [PYTHON, "-m", "hilnet", "run", str(forced), "--backend", "loopback", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    # The plan says it before anything runs ...
    assert (
        "plan warning: link mro-dsn window 1h-2h15m lasts 15s of wall time at scale 300, less than 3 round trips"
        in (p.stderr)
    )
    # ... and the run shows it: the rover's bundles reached the orbiter and stayed there.
    s = summary(out)
    assert s["passed"] is False
    failed = [c for c in s["results"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["delivered"], [(c["name"], c["actual"], c["failures"][:3]) for c in failed]
    home = [b for b in s["bundles"] if b["to"] == "moc"]
    assert len(home) == 16
    for b in home:
        assert b["deliveries"] == 0 and b["fate"] == "stored" and b["stored_at"] == ["mro"], b
