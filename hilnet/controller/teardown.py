"""Take a run's testbed down: ask each agent's status, stop agents, record link statistics, stop links.

Everything is attempted whatever fails before it (Ctrl-C, a dead agent, a
broken link): what could not be cleaned up comes back as a list of lines
for the run's verdict, and nothing here raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from hilnet.agent.protocol import Status
from hilnet.clock import Clock
from hilnet.errors import AgentError, LinkError
from hilnet.stacks.agent_process import AgentProcess

STATUS_WAIT_NS = 3_000_000_000  # all agents together; a silent one is not waited for longer
NS_PER_S = 1_000_000_000

Note = Callable[..., None]  # records a controller event: note(kind, **fields)


def tear_down(
    agents: Mapping[str, AgentProcess],
    engine: Any,
    handles: Mapping[str, Any],
    testbed: Any,
    note: Note,
    clock: Clock,
) -> list[str]:
    """Stop everything of one run; returns the problems left behind (empty when clean)."""
    problems: list[str] = []
    _record_status(agents, note, clock)
    _stop_agents(agents, problems)
    if engine is not None:
        for name, h in handles.items():
            try:
                note("link-stats", link=name, stats=h.stats())
            except LinkError as e:
                problems.append(f"link {name} stats: {e}")
        try:
            engine.stop()
            engine.join(5)
            engine.close()
        except Exception as e:  # keep tearing down the rest
            problems.append(f"engine: {e}")
    if testbed is not None:
        problems += testbed.teardown()
    return problems


def _record_status(agents: Mapping[str, AgentProcess], note: Note, clock: Clock) -> None:
    """Ask every live agent for its status at once, and record the answers that come in time."""
    asked = {}
    for name, proc in agents.items():
        if proc.alive():
            try:
                asked[name] = proc.send(Status())
            except AgentError:
                pass
    deadline = clock.now_ns() + STATUS_WAIT_NS
    for name, cid in asked.items():
        try:
            left = max(0, deadline - clock.now_ns()) / NS_PER_S
            note("agent-status", node=name, status=dict(agents[name].wait_reply(cid, timeout_s=left)))
        except AgentError:
            pass


def _stop_agents(agents: Mapping[str, AgentProcess], problems: list[str]) -> None:
    # All agents at once: one whose shutdown waits on a session over a link
    # that is down takes seconds to give up, and 50 of them in a row took minutes.
    def stop(name: str, proc: AgentProcess) -> None:
        try:
            proc.stop()
        except Exception as e:  # keep tearing down the rest
            problems.append(f"agent {name}: {e}")

    stoppers = [threading.Thread(target=stop, args=item, name=f"stop-{item[0]}") for item in agents.items()]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
