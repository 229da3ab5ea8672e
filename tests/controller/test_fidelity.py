"""Schedule fidelity judged: ``expect.fidelity``, its default per backend, and 500 links opening at 0.

The check is pure (synthetic logs). The 500-link test runs the controller's real
session and link engine over 500 UDP links (no agents): every link's state at scenario
time 0 is set before the run's start, so all 500 are on time; then the engine is made
to fall behind on purpose (each initial state takes a while to apply) and the verdict
fails with ``fidelity``, naming the change that came latest.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from types import SimpleNamespace

import pytest

from hilnet.controller.checks import check_run
from hilnet.controller.session import Session
from hilnet.errors import ScenarioErrors
from hilnet.link.shaper import direction as shaper_direction
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

MS = 1_000_000

SCENARIO = """
hilnet: 1
name: edges
clock: {scale: 1, duration: 10s}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
links:
  a-b: {ends: [a, b], medium: ethernet, up: [0-5s]}
"""


def edge(intended_ms: float, late_ns: int, direction: str = "a->b", what: str = "down", link: str = "a-b") -> dict:
    t = int(intended_ms * MS)
    return {
        "src": "link",
        "event": what,
        "t_ns": t + late_ns,
        "link": link,
        "direction": direction,
        "intended_wall_ns": t,
        "applied_wall_ns": t + late_ns,
    }


def judge(edges: list[dict], backend: str | None = "loopback", expect: str = "") -> dict:
    text = SCENARIO + (f"expect: {{{expect}}}\n" if expect else "")
    sc = load_scenario_text(text)
    start = [{"src": "controller", "event": "run-start", "t_ns": 0, "backend": backend}] if backend else []
    end = {"src": "controller", "event": "run-end", "t_ns": 10_000 * MS, "reason": "duration"}
    rep = check_run(sc, compile_plan(sc), [*start, *edges, end])
    return {r.name: r for r in rep.results}


def test_virtual_backends_hold_each_change_to_1ms_by_default():
    ok = judge([edge(0, 0, what="up"), edge(5000, 900_000)])["fidelity"]
    assert ok.passed and ok.expected == "every link change <= 1ms"
    bad = judge([edge(0, 0, what="up"), edge(5000, 1_100_000), edge(5000, 1_300_000, "b->a")], "netns")["fidelity"]
    assert not bad.passed and bad.actual.startswith("max 1.3ms")
    assert bad.failures == (
        "link a-b b->a down due at 5s was applied 1.3ms late (the worst of 2 of 3 changes over 1ms)",
        "link a-b a->b down due at 5s was applied 1.1ms late",
    )


def test_a_bench_run_is_held_to_5ms_by_default_and_expect_fidelity_overrides():
    assert judge([edge(5000, 4 * MS)], "bench")["fidelity"].passed
    assert not judge([edge(5000, 6 * MS)], "bench")["fidelity"].passed
    tight = judge([edge(5000, 200_000)], "loopback", "fidelity: 100us")["fidelity"]
    assert not tight.passed and tight.expected == "every link change <= 100us"
    assert judge([edge(5000, 30 * MS)], "loopback", "fidelity: 50ms")["fidelity"].passed


def test_early_counts_as_late_and_a_run_without_changes_passes():
    early = judge([edge(5000, -2 * MS)])["fidelity"]
    assert not early.passed and "applied 2ms early" in early.failures[0]
    none = judge([], backend=None)["fidelity"]
    assert none.passed and none.actual == "no link changes"


def test_many_late_changes_name_the_worst_ten_and_count_the_rest():
    edges = [edge(5000, (i + 2) * MS, link=f"l{i}") for i in range(25)]
    text = SCENARIO.replace("  a-b: {ends: [a, b], medium: ethernet, up: [0-5s]}\n", "") + "".join(
        f"  l{i}: {{ends: [a, b], medium: ethernet}}\n" for i in range(25)
    )
    text = text.replace("links:\n", "links:\n")
    sc = load_scenario_text(text)
    rep = check_run(
        sc, compile_plan(sc), [{"src": "controller", "event": "run-start", "t_ns": 0, "backend": "netns"}, *edges]
    )
    fid = next(r for r in rep.results if r.name == "fidelity")
    assert len(fid.failures) == 11
    assert fid.failures[0].startswith("link l24 a->b down due at 5s was applied 26ms late (the worst of 25 of 25")
    assert fid.failures[-1] == "... and 15 more changes over 1ms"


@pytest.mark.parametrize("value", ["fast", "-1ms", "1"])
def test_a_bad_expect_fidelity_is_refused_at_its_place(value):
    text = SCENARIO + f"expect: {{fidelity: {value}}}\n"
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(text, "s.yaml")
    (err,) = e.value.errors
    assert err.line == text.count("\n") and "expect fidelity" in str(err)


# -- 500 links open at scenario time 0, through the controller's session and engine -----------

LINKS = 500


def star(n: int) -> str:
    nodes = "".join(f"  n{i}: {{eid: ipn:{i + 2}.0}}\n" for i in range(n))
    links = "".join(f"  l{i}: {{ends: [hub, n{i}], medium: ethernet, up: [0-1m]}}\n" for i in range(n))
    return (
        "hilnet: 1\nname: star\nclock: {scale: 1, duration: 1m}\nnodes:\n  hub: {eid: ipn:1.0}\n"
        + nodes
        + "links:\n"
        + links
    )


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


@pytest.fixture
def udp_links():
    """(a spec, b spec) of 500 UDP links, each end's far side a socket of ours."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * LINKS + 256  # each link: two engine sockets and two of ours
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    ours, probes, specs = [], [], []
    for _ in range(LINKS):
        ends = []
        for _end in "ab":
            peer, probe = _udp(), _udp()  # probe: a free port for the engine's end, held until all are chosen
            ours.append(peer)
            probes.append(probe)
            ends.append(f"udp://127.0.0.1:{probe.getsockname()[1]}?peer=127.0.0.1:{peer.getsockname()[1]}")
        specs.append(tuple(ends))
    for probe in probes:
        probe.close()
    yield specs
    for sock in ours:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_at_zero(tmp_path, specs, margin_ns: int) -> dict:
    """Arm 500 links that open at 0, start the run ``margin_ns`` ahead, wait past it; the verdict."""
    sc = load_scenario_text(star(LINKS))
    plan = compile_plan(sc)
    session = Session(sc, plan, str(tmp_path), "loopback", "test")
    links = {f"l{i}": SimpleNamespace(a_spec=a, b_spec=b) for i, (a, b) in enumerate(specs)}
    session.testbed = SimpleNamespace(nodes={}, links=links, teardown=list)
    try:
        session._open_links()
        session._arm_links()  # as build() does, with no nodes to start
        t0 = session.clock.now_ns() + margin_ns
        session.start(t0)
        session.clock.sleep_until_ns(t0 + 50 * MS)
    finally:
        assert session.teardown() == []
        session.log.close()
    rep = check_run(sc, plan, session.log.records())
    assert len(rep.fidelity.edges) == 2 * LINKS  # both ways of each link opened
    return {r.name: r for r in rep.results}


def test_500_links_opening_at_0_are_on_time(tmp_path, udp_links):
    fid = open_at_zero(tmp_path, udp_links, margin_ns=1_000 * MS)["fidelity"]
    assert fid.passed, fid.failures[:3]


def test_an_engine_that_falls_behind_fails_fidelity_naming_the_latest_change(tmp_path, udp_links, monkeypatch):
    slow = shaper_direction.Direction.set_initial

    def set_initial_slowly(self, event, now_ns):
        time.sleep(0.0003)  # the fault on purpose: 1,000 initial states take about 0.3 s to apply
        slow(self, event, now_ns)

    monkeypatch.setattr(shaper_direction.Direction, "set_initial", set_initial_slowly)
    fid = open_at_zero(tmp_path, udp_links, margin_ns=50 * MS)["fidelity"]
    assert not fid.passed
    worst = fid.failures[0]
    # the links are armed and opened in scenario order: the last one's b->a comes latest
    assert worst.startswith(f"link l{LINKS - 1} b->a up due at 0s was applied "), worst
    assert " late (the worst of " in worst and f" of {2 * LINKS} changes over 1ms)" in worst
    assert os.path.exists(tmp_path / "events.jsonl")
