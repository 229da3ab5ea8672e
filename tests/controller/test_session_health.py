"""A run's health check: a link event the controller could not take ends the run with its cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilnet.clock import VirtualClock
from hilnet.controller.session import Session
from hilnet.errors import LinkError, TestbedError
from hilnet.link.engine import Engine
from hilnet.link.shaper import ScheduleEvent
from hilnet.scenario.load import load_scenario
from hilnet.scenario.plan import compile_plan

MS = 1_000_000
SCENARIO = Path(__file__).parents[2] / "scenarios" / "minimal.yaml"


def test_a_link_event_the_controller_cannot_take_breaks_the_run(tmp_path, monkeypatch):
    scenario = load_scenario(str(SCENARIO))
    clock = VirtualClock(0)
    session = Session(scenario, compile_plan(scenario), str(tmp_path), "loopback", "test", clock=clock)
    session.t0 = 0
    session.log.set_t0(0)
    write = session.log.write

    def broken_write(src: str, record: dict, wall_abs: int, **extra: object) -> None:
        if src == "link":
            raise RuntimeError("record lost")  # stands for any bug on the listener's path
        write(src, record, wall_abs, **extra)

    monkeypatch.setattr(session.log, "write", broken_write)
    session.engine = Engine(clock, on_event=session._link_event)
    a, b = _udp_pair()
    session.engine.add_link("l", a, b, schedule_ab=[ScheduleEvent(at_ns=5 * MS, up=False)])
    try:
        session.check_health()  # healthy so far
        session.engine.run_once()
        clock.set(5 * MS)
        with pytest.raises(LinkError):
            session.engine.run_once()  # a hand-driven engine raises the listener's failure at once
        with pytest.raises(TestbedError, match="RuntimeError: record lost"):
            session.check_health()
    finally:
        session.engine.close()
        session.log.close()


def _udp_pair() -> tuple[str, str]:
    import socket

    ports = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        s.close()
    return (f"udp://127.0.0.1:{ports[0]}?peer=127.0.0.1:9", f"udp://127.0.0.1:{ports[1]}?peer=127.0.0.1:9")
