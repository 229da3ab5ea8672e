"""AgentProcess against a real ``hilnet agent --stdio``: typed commands out, typed events in, replies by id."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hilnet.agent.protocol import Event, Hello, Inject, Ready, Status
from hilnet.clock import MonotonicClock
from hilnet.errors import AgentError
from hilnet.stacks.agent_process import AgentProcess, Outcome


@pytest.fixture
def agent(tmp_path: Path):
    events: list[Event] = []
    unreadable: list[str] = []
    proc = AgentProcess(
        "a",
        (),
        str(tmp_path / "logs" / "a.log"),
        MonotonicClock(),
        lambda node, ev: events.append(ev),
        lambda node, msg: unreadable.append(msg),
    )
    proc.start()
    proc.wait_ready()
    yield proc, events, unreadable
    proc.stop()


def test_typed_commands_and_events(agent) -> None:
    proc, events, unreadable = agent
    assert isinstance(events[0], Ready)
    hello = proc.call(Hello())
    assert isinstance(hello, dict)
    offset, uncertainty = proc.clock_offset(samples=2)
    assert uncertainty >= 0
    assert unreadable == []


def test_reply_callback_runs_without_a_waiting_thread(agent) -> None:
    proc, events, _ = agent
    got: list[Outcome] = []
    done = threading.Event()

    def on_reply(outcome: Outcome) -> None:
        got.append(outcome)
        done.set()

    proc.send(Inject(dest="ipn:2.0", size=10), on_reply=on_reply)  # refused: not configured yet
    assert done.wait(20)
    assert isinstance(got[0], AgentError) and "refused inject" in str(got[0])


def test_pending_callbacks_learn_that_the_agent_died(agent) -> None:
    proc, _, _ = agent
    got: list[Outcome] = []
    done = threading.Event()
    proc.kill()
    with pytest.raises(AgentError, match="not running"):
        proc.send(Status(), on_reply=got.append)
    assert got == []
    proc.start()
    proc.wait_ready()
    proc.send(Status(), on_reply=lambda o: (got.append(o), done.set()), timeout_s=0.0)
    proc.expire_overdue()  # a zero timeout is overdue at once, unless the reply already came
    assert done.wait(20)
    assert len(got) == 1
