"""The ``power-cut`` fault: read, planned, replayed at its instants, and refused without power commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hilnet.clock import VirtualClock
from hilnet.controller.sequencer import Sequencer
from hilnet.scenario.actions import PowerOff, PowerOn
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import PowerCut
from hilnet.scenario.plan import compile_plan
from hilnet.units import scenario_to_wall_ns

REPO = Path(__file__).resolve().parents[2]
ISS = REPO / "scenarios" / "iss-tdrs-ground.yaml"
CUT = "  - {at: 33m, cut: wsc-eac, for: 6m}\n"
POWER = "  - {at: 50m, power-cut: tdrs-w, for: 2m}\n"
S = 10**9
T0 = 1_000 * S


def _scenario_text() -> str:
    return ISS.read_text().replace(CUT, CUT + POWER)


def test_a_power_cut_is_read_with_where_it_is_written_and_planned_as_off_then_on():
    text = _scenario_text()
    sc = load_scenario_text(text, "iss.yaml")
    cut = next(f for f in sc.faults if isinstance(f, PowerCut))
    line = text.splitlines().index(POWER.rstrip("\n")) + 1
    assert (cut.node, cut.at_ns, cut.for_ns, cut.line, cut.col) == ("tdrs-w", 50 * 60 * S, 2 * 60 * S, line, 5)
    plan = compile_plan(sc)
    power = [a for a in plan.actions if isinstance(a, (PowerOff, PowerOn))]
    assert [(a.kind, a.node, a.at_ns) for a in power] == [
        ("power-cut", "tdrs-w", 50 * 60 * S),
        ("power-on", "tdrs-w", 52 * 60 * S),
    ]


def test_a_power_cut_needs_for():
    bad = ISS.read_text().replace(CUT, CUT + "  - {at: 50m, power-cut: tdrs-w}\n")
    try:
        load_scenario_text(bad, "iss.yaml")
    except Exception as e:  # ScenarioErrors
        assert "power-cut lacks 'for'; expected how long the power stays off, such as for: 2m" in str(e)
    else:
        raise AssertionError("a power-cut without for: was accepted")


class Board:
    """The sequencer's target on a VirtualClock: records when the power went off and on."""

    def __init__(self, clock: VirtualClock):
        self.clock = clock
        self.done: list[tuple[int, str, str]] = []

    def inject(self, action) -> None:
        pass

    def crash(self, node: str) -> None:
        pass

    def restart(self, node: str) -> None:
        pass

    def power_cut(self, node: str) -> None:
        self.done.append((self.clock.now_ns(), "off", node))

    def power_on(self, node: str) -> None:
        self.done.append((self.clock.now_ns(), "on", node))

    def note(self, kind: str, wall_abs: int | None = None, **fields: object) -> None:
        pass

    def check_health(self) -> None:
        pass

    def settled(self) -> bool:
        return False


def test_the_sequencer_switches_the_board_off_and_on_at_the_planned_instants():
    plan = compile_plan(load_scenario_text(_scenario_text(), "iss.yaml"))
    clock = VirtualClock(start_ns=T0)
    board = Board(clock)
    Sequencer(clock, plan, T0, board, until_settled=False).run()
    wall = [T0 + scenario_to_wall_ns(m * 60 * S, 60) for m in (50, 52)]
    assert board.done == [(wall[0], "off", "tdrs-w"), (wall[1], "on", "tdrs-w")]


def test_a_run_without_a_bench_refuses_a_power_cut_at_its_line(tmp_path):
    path = tmp_path / "iss.yaml"
    path.write_text(_scenario_text())
    line = _scenario_text().splitlines().index(POWER.rstrip("\n")) + 1
    r = subprocess.run(
        [sys.executable, "-m", "hilnet", "run", str(path), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{path}:{line}:5: power-cut: tdrs-w switches a board off, and this run has no bench" in r.stderr
    assert not (tmp_path / "run").exists()  # refused before anything started
