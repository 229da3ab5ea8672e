"""In-process stand-ins for the tests of the agent core (tests/agent/test_agent_core.py).

:class:`FakeCla` follows hilnet/agent/cla/base.py: it records every bundle the
agent sends and answers as a test tells it to (ack, fail, refuse, or hold until
released). :class:`PairCla` joins two in-process agents the way a real CLA does:
the receiver's ``bundle_received`` must return before the send counts as
acknowledged, and a StoreFullError there becomes TransferRefusedError here.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from hilnet.agent.agent import Agent
from hilnet.agent.config import AgentConfig
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.clock import VirtualClock
from hilnet.errors import ClaError, StoreFullError, TransferRefusedError

MS = 1_000_000
S = 1_000_000_000


class FakeCla:
    """A convergence layer whose peer is the test.

    ``mode`` decides what :meth:`send` does: ``"ack"`` returns (the peer
    committed it), ``"fail"`` raises ClaError (session lost), ``"refuse"``
    raises TransferRefusedError (peer's store full), ``"hold"`` waits until
    :meth:`release` and then acts on the mode in force.
    """

    acknowledges = True

    def __init__(self, name: str = "fake", mode: str = "ack"):
        self.name = name
        self.mode = mode
        self.stats: Counter = Counter()
        self.sent: list[tuple[str, bytes]] = []  # every attempt, acked or not
        self.acked: list[tuple[str, bytes]] = []
        self.ranks: list[int] = []  # the class-of-service rank of each attempt, as the forwarder gave it
        self.sink = None
        self._up: set[str] = set()
        self._release = asyncio.Event()

    async def start(self, sink) -> None:
        self.sink = sink

    def peers_up(self) -> set[str]:
        return set(self._up)

    def up(self, peer: str) -> None:
        self._up.add(peer)
        self.sink.session_changed(self.name, peer, True, {})

    def down(self, peer: str) -> None:
        self._up.discard(peer)
        self.sink.session_changed(self.name, peer, False, {"reason": "test"})

    def release(self, mode: str = "ack") -> None:
        self.mode = mode
        self._release.set()

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        self.sent.append((peer, data))
        self.ranks.append(rank)
        if self.mode == "hold":
            await self._release.wait()
        if self.mode == "fail":
            raise ClaError("session lost (test)")
        if self.mode == "refuse":
            raise TransferRefusedError("peer store full (test)")
        self.acked.append((peer, data))

    async def stop(self) -> None:
        self._up.clear()


class PairCla:
    """One end of an in-process link between two agents: sends go straight into the other agent."""

    acknowledges = True

    def __init__(self, name: str, me: str):
        self.name = name
        self.me = me
        self.stats: Counter = Counter()
        self.other: PairCla | None = None
        self.sink = None

    async def start(self, sink) -> None:
        self.sink = sink

    def peers_up(self) -> set[str]:
        return {self.other.me} if self.other else set()

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        try:
            # as TCPCLv4 does: the final XFER_ACK only after the receiver committed the bundle
            await self.other.sink.bundle_received(data, self.other.name, self.me)
        except StoreFullError as e:
            raise TransferRefusedError(str(e)) from None

    async def stop(self) -> None:
        pass


def connect(a: Agent, cla_a: PairCla, b: Agent, cla_b: PairCla) -> None:
    """Join two configured agents through a PairCla each and bring the session up on both."""
    cla_a.other, cla_b.other = cla_b, cla_a
    cla_a.sink, cla_b.sink = a, b
    a.clas.append(cla_a)
    b.clas.append(cla_b)
    a.session_changed(cla_a.name, cla_b.me, True, {})
    b.session_changed(cla_b.name, cla_a.me, True, {})


class Node:
    """An Agent on a VirtualClock with its event list and a FakeCla, for one test."""

    def __init__(self, clock: VirtualClock, real0_ns: int):
        self.clock = clock
        self.events: list = []
        # DTN time follows the virtual clock, so advancing it ages bundles too
        self.agent = Agent(emit=self.events.append, clock=clock, realtime_ns=lambda: real0_ns + clock.now_ns())
        self.cla = FakeCla()

    async def configure(self, cfg: AgentConfig, *, fake: bool = True) -> Node:
        await self.agent.configure(cfg)
        if fake:
            await self.cla.start(self.agent)
            self.agent.clas.append(self.cla)
        return self

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    def journal(self) -> list[tuple[str, str]]:
        return [(d.key, d.reason) for _, d in self.agent.store.deletions()]

    async def until(self, cond: Callable[[], bool], timeout_s: float = 5.0, step_ns: int = 0) -> None:
        """Let the agent run (waking its forwarder) until ``cond()`` holds; fail after ``timeout_s`` real s.

        Store commits go through a thread and fsync, so this waits on real time,
        in 2 ms steps; virtual time moves ``step_ns`` per step (0: not at all).
        """
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s} s; events: {self.events[-8:]}")
            if step_ns:
                self.clock.advance(step_ns)
            self.agent.forwarder.wake()
            await asyncio.sleep(0.002)

    async def idle(self, rounds: int = 20) -> None:
        """Give the forwarder a few passes (real ms) in which nothing is expected to happen."""
        for _ in range(rounds):
            self.agent.forwarder.wake()
            await asyncio.sleep(0.002)
