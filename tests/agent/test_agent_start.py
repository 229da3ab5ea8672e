"""A held agent: configured with ``hold``, its plan time runs only from the ``start`` it is given.

``hilnet run`` configures every agent held, arms every link, and only then picks the run's
start, however long that took; each agent then learns where scenario time 0 lies.
"""

from __future__ import annotations

import asyncio
import time

from agent_test_fakes import MS, Node, S

from hilnet.agent.config import AgentConfig
from hilnet.agent.openings import GUARD_NS
from hilnet.clock import VirtualClock
from hilnet.scenario.contact import Contact

T0 = 1_000 * S
PLAN = (Contact("a", "b", 0, 10 * S, 125_000, MS), Contact("b", "a", 0, 10 * S, 125_000, MS))


class KickedCla:
    """A CLA that only records when the agent tells it a contact with a peer opened."""

    name = "kicked"
    acknowledges = True

    def __init__(self):
        self.stats: dict = {}
        self.kicked: list[str] = []

    async def start(self, sink) -> None:
        pass

    def peers_up(self) -> set[str]:
        return set()

    def contact_started(self, peer: str) -> None:
        self.kicked.append(peer)

    async def stop(self) -> None:
        pass


def test_plan_time_waits_for_start_and_then_runs_from_its_epoch(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        n = Node(clock, time.time_ns() - T0)
        cla = KickedCla()
        n.agent.clas.append(cla)
        cfg = AgentConfig(
            node="a",
            eid="ipn:1.0",
            store_path=str(tmp_path / "a.sqlite"),
            contacts=PLAN,
            nodes={"a": "ipn:1.0", "b": "ipn:2.0"},
            hold=True,
        )
        await n.configure(cfg, fake=False)
        try:
            assert n.agent.plan_now() < -365 * 86_400 * S  # held: every contact is far ahead
            clock.advance(GUARD_NS + MS)
            await n.idle()
            assert cla.kicked == []  # no dialling before the start
            await n.agent.start_at(clock.now_ns() - 3 * MS)  # plan time 0 was a moment ago
            assert n.agent.plan_now() == 3 * MS
            await n.idle()
            assert cla.kicked == []  # the opening at 0 is kicked GUARD_NS after it
            clock.advance(GUARD_NS)
            await n.until(lambda: cla.kicked == ["ipn:2.0"])
        finally:
            await n.agent.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_without_hold_plan_time_starts_at_configure(tmp_path):
    async def main():
        clock = VirtualClock(T0)
        n = await Node(clock, time.time_ns() - T0).configure(
            AgentConfig(node="a", eid="ipn:1.0", store_path=str(tmp_path / "a.sqlite"))
        )
        try:
            assert n.agent.plan_now() == 0
        finally:
            await n.agent.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_start_that_comes_late_kicks_the_contacts_open_now(tmp_path):
    """Held, the agent's connectors may have backed off for seconds: a late start must not leave them there."""

    async def main():
        clock = VirtualClock(T0)
        n = Node(clock, time.time_ns() - T0)
        cla = KickedCla()
        n.agent.clas.append(cla)
        cfg = AgentConfig(
            node="a",
            eid="ipn:1.0",
            store_path=str(tmp_path / "a.sqlite"),
            contacts=PLAN,
            nodes={"a": "ipn:1.0", "b": "ipn:2.0"},
            hold=True,
        )
        await n.configure(cfg, fake=False)
        try:
            await n.agent.start_at(clock.now_ns() - 40 * MS)  # plan time 0 was 40 ms ago: its kick is past
            await n.until(lambda: cla.kicked == ["ipn:2.0"])  # without the clock moving
        finally:
            await n.agent.stop()

    asyncio.run(asyncio.wait_for(main(), 30))
