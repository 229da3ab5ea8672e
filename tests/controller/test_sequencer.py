"""The sequencer replays a whole plan on a VirtualClock against a fake testbed, in milliseconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hilnet.clock import VirtualClock
from hilnet.controller.sequencer import Sequencer
from hilnet.errors import TestbedError
from hilnet.scenario.actions import BurstStart, CrashAgent, InjectBundle, RestartAgent
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan, compile_plan
from hilnet.units import scenario_to_wall_ns

ISS = Path(__file__).resolve().parents[2] / "scenarios" / "iss-tdrs-ground.yaml"
CUT = "  - {at: 33m, cut: wsc-eac, for: 6m}\n"
# The ISS story has one cut; a crash and an error burst join it so that every kind is replayed.
MORE_FAULTS = (
    "  - {at: 50m, crash: tdrs-w, restart-after: 30s}\n"
    "  - {at: 70m, error-burst: tdrs-e-tdrs-w, for: 2m, bit-error-rate: 1e-4}\n"
)
S = 10**9
T0 = 1_000 * S  # the run's start on the virtual clock


class FakeTestbed:
    """The sequencer's target: records what it is asked to do, and when."""

    def __init__(self, clock: VirtualClock, settle_after: int | None = None):
        self.clock = clock
        self.done: list[tuple[int, str, str]] = []  # (clock ns, what, subject)
        self.notes: list[tuple[int, str, dict[str, object]]] = []
        self.settle_after = settle_after  # settled once this many bundles are in
        self.broken_at: int | None = None
        self.on_inject = lambda n: None

    def inject(self, action: InjectBundle) -> None:
        self.done.append((self.clock.now_ns(), "inject", f"{action.traffic}#{action.seq + 1}"))
        self.on_inject(sum(1 for d in self.done if d[1] == "inject"))

    def crash(self, node: str) -> None:
        self.done.append((self.clock.now_ns(), "crash", node))

    def restart(self, node: str) -> None:
        self.done.append((self.clock.now_ns(), "restart", node))

    def note(self, kind: str, wall_abs: int | None = None, **fields: object) -> None:
        self.notes.append((self.clock.now_ns() if wall_abs is None else wall_abs, kind, fields))

    def check_health(self) -> None:
        if self.broken_at is not None and self.clock.now_ns() >= self.broken_at:
            raise TestbedError("agent tdrs-w exited on its own")

    def settled(self) -> bool:
        injected = sum(1 for d in self.done if d[1] == "inject")
        return self.settle_after is not None and injected >= self.settle_after


def iss_scenario(faults: str = MORE_FAULTS) -> Scenario:
    text = ISS.read_text()
    assert CUT in text
    return load_scenario_text(text.replace(CUT, CUT + faults), str(ISS))


def iss_plan(faults: str = MORE_FAULTS) -> Plan:
    return compile_plan(iss_scenario(faults))


def test_iss_plan_replays_every_action_in_order_at_its_instant() -> None:
    plan = iss_plan()
    clock = VirtualClock(T0 - 5 * S)
    fake = FakeTestbed(clock)
    started = time.perf_counter()
    assert Sequencer(clock, plan, T0, fake, until_settled=False).run() == "duration"
    assert time.perf_counter() - started < 2.0
    assert clock.now_ns() == T0 + scenario_to_wall_ns(plan.duration_ns, plan.scale)

    expected_done, expected_notes = [], []
    for a in plan.actions:
        at = T0 + a.wall_ns
        if isinstance(a, InjectBundle):
            expected_done.append((at, "inject", f"{a.traffic}#{a.seq + 1}"))
        elif isinstance(a, (CrashAgent, RestartAgent)):
            expected_done.append((at, a.kind, a.node))
            expected_notes.append((at, a.kind, {"node": a.node}))
        elif isinstance(a, BurstStart):
            expected_notes.append((at, a.kind, {"link": a.link, "ber": a.ber}))
        elif a.kind in ("cut", "restore", "burst-end"):
            expected_notes.append((at, a.kind, {"link": a.subject}))
    assert fake.done == expected_done
    assert fake.notes == expected_notes
    # the story, by the minute: 18 injections, the cut, the crash and its restart, the burst
    kinds = [k for _, k, _ in fake.done] + [k for _, k, _ in fake.notes]
    assert kinds.count("inject") == 18
    assert [(t - T0, k) for t, k, _ in fake.notes] == [
        (33 * S, "cut"),
        (39 * S, "restore"),
        (50 * S, "crash"),
        (50 * S + S // 2, "restart"),
        (70 * S, "burst-start"),
        (72 * S, "burst-end"),
    ]
    tweet_times = [t - T0 for t, what, tag in fake.done if tag.startswith("tweets#")]
    assert tweet_times == [S + 5 * S * i for i in range(16)]


def test_settled_run_ends_right_after_its_last_injection() -> None:
    plan = iss_plan("")
    clock = VirtualClock(T0)
    fake = FakeTestbed(clock, settle_after=18)
    assert Sequencer(clock, plan, T0, fake).run() == "settled"
    last_inject = max(T0 + a.wall_ns for a in plan.actions if isinstance(a, InjectBundle))
    assert clock.now_ns() == last_inject == T0 + 76 * S


def test_broken_testbed_raises_from_the_wait() -> None:
    clock = VirtualClock(T0)
    fake = FakeTestbed(clock)
    fake.broken_at = T0 + 20 * S
    with pytest.raises(TestbedError, match="tdrs-w exited"):
        Sequencer(clock, iss_plan(), T0, fake).run()
    assert T0 + 20 * S <= clock.now_ns() < T0 + 21 * S
    assert all(t < T0 + 21 * S for t, _, _ in fake.done)


def test_stop_interrupts_the_replay() -> None:
    clock = VirtualClock(T0)
    fake = FakeTestbed(clock)
    seq = Sequencer(clock, iss_plan(), T0, fake)

    def stop_at_third(n: int) -> None:
        if n == 3:
            seq.stop()

    fake.on_inject = stop_at_third
    assert seq.run() == "interrupted"
    assert [k for _, k, _ in fake.done] == ["inject"] * 3


def _udp_specs() -> tuple[str, str]:
    """Two loopback UDP endpoint specs whose ports were free a moment ago (the engine only needs to open them)."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return tuple(f"udp://127.0.0.1:{p}?peer=127.0.0.1:9" for p in ports)  # type: ignore[return-value]


def test_iss_link_script_is_applied_at_its_exact_instants() -> None:
    """The other half of a replay: the emulator's copy of the plan (windows, changes, the cut, the burst).

    Every link of the ISS story runs in a real engine on the same VirtualClock,
    stepped to each scripted instant: every gate edge and parameter change is
    applied at exactly ``t0`` plus its wall time, and at no other instant than
    those the plan's link actions name."""
    from hilnet.controller.schedule import emulator_schedule
    from hilnet.link.engine import Engine
    from hilnet.link.params import direction_config_from_params
    from hilnet.scenario.actions import BurstEnd, CutLink, LinkChange, LinkDown, LinkUp, RestoreLink

    scenario = iss_scenario()
    plan = compile_plan(scenario)
    end = T0 + scenario_to_wall_ns(plan.duration_ns, plan.scale)
    clock = VirtualClock(T0 - S)
    events: list[dict[str, object]] = []
    engine = Engine(clock, on_event=events.append)
    instants: set[int] = set()
    started = time.perf_counter()
    try:
        for link in scenario.links:
            fwd, bwd = emulator_schedule(scenario, link, T0)
            instants |= {e.at_ns for e in fwd + bwd if e.at_ns <= end}  # a run stops at its end
            engine.add_link(
                link.name,
                *_udp_specs(),
                ab=direction_config_from_params(link.forward, up=False),
                ba=direction_config_from_params(link.backward, up=False),
                schedule_ab=fwd,
                schedule_ba=bwd,
            )
        engine.run_once()
        for t in sorted(instants):
            clock.set(t)
            engine.run_once()
    finally:
        engine.close()
    assert time.perf_counter() - started < 2.0

    edges = [e for e in events if e["event"] in ("up", "down", "change")]
    assert len(edges) >= 30, f"the engine applied only {len(edges)} edges"
    late = [e for e in edges if e["applied_ns"] != e["at_ns"]]
    assert not late, f"applied off their instant: {late[:3]}"
    link_kinds = (LinkUp, LinkDown, LinkChange, CutLink, RestoreLink, BurstStart, BurstEnd)
    for link in scenario.links:
        applied = {e["at_ns"] for e in edges if e["link"] == link.name}
        planned = {T0 + a.wall_ns for a in plan.actions if isinstance(a, link_kinds) and a.subject == link.name}
        assert applied <= planned, f"{link.name}: applied at instants the plan does not name"
        # Every instant the plan names changes something, except a link's first
        # 'down' at 0 (its gates start closed) and the end of the run.
        assert planned - applied <= {T0, end}, link.name
