"""LTP convergence layer: the thin UDP driver around :class:`~hilnet.agent.cla.ltp_engine.LtpEngine`.

One UDP socket (RFC 7122: one segment per datagram, port 1113 by default)
carries every session with every peer; peers are known by configuration (node
id -> UDP address and engine id). The engine decides everything; this driver
feeds it datagrams and the clock, sends what it hands out, and turns its
events into the CLA contract (:mod:`~hilnet.agent.cla.base`):

- ``send()`` opens an export session for the bundle (one block per bundle, all
  red) and returns when the receiver's reports claimed all of it, which the
  receiver sends only after its agent stored the bundle; a cancelled session
  (retransmissions exhausted, cancelled by the receiver, its store refused it)
  raises :class:`~hilnet.errors.ClaError` and the agent keeps the bundle.
- a block whose red part is complete goes through :func:`deliver_to_sink`; the
  engine is told to accept (the report completing the block goes out) or to
  refuse it (a cancel, reason SYS_CNCLD).
- LTP has no session to open: every configured peer is "up" from start to
  stop, and the contact plan (given by the agent) says when data may leave,
  how fast, and how long timers wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from hilnet.agent.cla.base import BundleSink, deliver_to_sink
from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.ltp_engine import LtpEngine
from hilnet.agent.cla.ltp_session import (
    BlockReceived,
    ExportDone,
    ExportFailed,
    ImportEnded,
    Limited,
    LtpSettings,
    Peer,
)
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import ClaError

if TYPE_CHECKING:
    from hilnet.agent.cla.ltp_plan import PeerPlan
    from hilnet.agent.config import AgentConfig

log = logging.getLogger(__name__)

MAX_NAP_S = 0.05  # the longest the driver sleeps before it reads its clock again
SHORT_NAP_S = 0.005  # a wait this short just sleeps
SOCKET_BUFFER = 8 << 20  # bytes of datagrams the kernel holds while the loop is busy
SO_RCVBUFFORCE = 33  # Linux; not in the socket module


def _grow_receive_buffer(sock: socket.socket | None) -> None:
    """Room for the datagrams that arrive while the loop is busy (the agent storing a bundle, a slow host)."""
    if sock is None:
        return
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):  # root may pass net.core.rmem_max
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            return
        except OSError:
            continue


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, cla: LtpCla):
        self.cla = cla

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.cla.datagram(data)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like: the link's business
        self.cla.stats["socket_error"] += 1


class LtpCla:
    """LTP over UDP on ``listen`` (host, port) with ``peers`` (node id -> :class:`Peer`)."""

    acknowledges = True

    def __init__(
        self,
        node_id: str,
        settings: LtpSettings,
        listen: tuple[str, int],
        peers: Mapping[str, Peer],
        clock: Clock | None = None,
        name: str = "ltp",
        resources: Resources | None = None,
        replan: Callable[[AgentConfig, str], PeerPlan] | None = None,
    ):
        """``replan(config, peer node id)``: a peer's plan from the agent's config, for :meth:`plan_moved`."""
        self.node_id = node_id
        self._replan = replan
        self.name = name
        self.clock = clock or MonotonicClock()
        self.listen = listen
        self.resources = resources or Resources(clock=self.clock)
        self.peers = dict(peers)
        res = self.resources
        self.engine = LtpEngine(
            settings,
            {p.engine: p for p in self.peers.values()},
            holding=lambda peer: res.holding(None, peer, name),
        )
        self.stats: Counter[str] = self.engine.stats
        self.sink: BundleSink | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._wake = asyncio.Event()
        self._room = asyncio.Condition()
        self._sends: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def plan_moved(self, config: AgentConfig) -> None:
        """The agent's plan time 0 moved (its ``start``, after a held configure): every peer's windows
        follow it. Sessions begun before keep their peer's old plan (a held agent has none)."""
        if self._replan is None:
            return
        replan = self._replan
        self.peers = {nid: dataclasses.replace(p, plan=replan(config, nid)) for nid, p in self.peers.items()}
        for p in self.peers.values():
            self.engine.peers[p.engine] = p
            self.engine.pacer.add_peer(p)

    # --- the CLA contract -----------------------------------------------------------------

    async def start(self, sink: BundleSink) -> None:
        self.sink = sink
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Socket(self), local_addr=self.listen)
        except OSError as exc:
            raise ClaError(f"LTP cannot bind UDP {self.listen[0]}:{self.listen[1]}: {exc.strerror or exc}") from None
        self._transport = transport
        sock = transport.get_extra_info("socket")
        _grow_receive_buffer(sock)
        self._loop_task = asyncio.create_task(self._run())
        for node, p in self.peers.items():
            sink.session_changed(
                self.name, node, True, {"address": f"{p.address[0]}:{p.address[1]}", "engine": p.engine}
            )

    def peers_up(self) -> set[str]:
        return set(self.peers) if self._transport is not None else set()

    @property
    def bound(self) -> tuple[str, int]:
        """The UDP address the socket is bound to (the port the OS chose when 0 was asked)."""
        if self._transport is None:
            raise ClaError("LTP is not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Send one bundle as one LTP block; returns once the receiver reported all of it (after storing it).

        ``rank`` (class of service): a higher-ranked bundle's first pass goes ahead of lower-ranked ones
        already under way, which pause (docs/cla.md).
        """
        p = self.peers.get(peer)
        if p is None or self._transport is None:
            raise ClaError(f"no LTP peer {peer}")
        if len(data) > self.engine.settings.max_block:
            raise ClaError(
                f"a bundle of {len(data)} bytes passes the LTP block limit of {self.engine.settings.max_block}"
            )
        async with self._room:
            await self._room.wait_for(lambda: self.engine.export_room)
            number = self.engine.send_block(p.engine, data, rank)
        done = asyncio.get_running_loop().create_future()
        self._sends[number] = done
        self._wake.set()
        try:
            await done
        except asyncio.CancelledError:
            self.engine.cancel_export(number, "the agent stopped the send")
            self._wake.set()
            raise
        finally:
            self._sends.pop(number, None)
        self.stats["bundles_sent"] += 1

    async def stop(self) -> None:
        if self._loop_task is not None:
            for number in list(self.engine.exports):
                self.engine.cancel_export(number, "the agent stops")
            self._pump()  # the cancels go out once, unpaced by a closing contact
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in list(self._tasks):
            task.cancel()
        for fut in self._sends.values():
            if not fut.done():
                fut.set_exception(ClaError("LTP stopped"))
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            if self.sink is not None:
                for node in self.peers:
                    self.sink.session_changed(self.name, node, False, {"reason": "stopped"})

    # --- the driver -----------------------------------------------------------------------

    def datagram(self, data: bytes) -> None:
        self.engine.receive(data, self.clock.now_ns())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._pump()
            now = self.clock.now_ns()
            nxt = self.engine.next_wakeup(now)
            nap = MAX_NAP_S if nxt is None else min(MAX_NAP_S, max(0, nxt - now) / 1e9)
            if self._wake.is_set() or nap <= SHORT_NAP_S:
                # Pacing naps are short and many: a plain sleep is cheaper than a wait on the event; a
                # datagram meanwhile is taken by the engine at once, only its answer waits for the wake.
                self._wake.clear()
                await asyncio.sleep(nap if nap > 0 else 0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), nap)
            self._wake.clear()

    def _pump(self) -> None:
        now = self.clock.now_ns()
        self.engine.tick(now)
        transport = self._transport
        for out in self.engine.due(now):
            if transport is not None:
                transport.sendto(out.datagram, self.engine.peers[out.peer].address)
        for ev in self.engine.take_events():
            self._event(ev)

    def _event(self, ev: object) -> None:
        if isinstance(ev, BlockReceived):
            task = asyncio.create_task(self._deliver(ev))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(ev, ExportDone | ExportFailed):
            fut = self._sends.get(ev.session)
            if fut is not None and not fut.done():
                if isinstance(ev, ExportDone):
                    fut.set_result(None)
                else:
                    fut.set_exception(ClaError(f"LTP session {ev.session}: {ev.reason}"))
            task = asyncio.create_task(self._notify_room())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(ev, Limited):
            self.resources.hit(self.name, ev.limit, ev.detail, ev.peer)
        elif isinstance(ev, ImportEnded) and ev.reason:
            log.info("ltp: import session %d of engine %d ended: %s", ev.session, ev.engine, ev.reason)

    async def _notify_room(self) -> None:
        async with self._room:
            self._room.notify_all()

    async def _deliver(self, ev: BlockReceived) -> None:
        peer = self.engine.peers[ev.engine].node
        if self.sink is None:  # not started: nothing can have arrived
            return
        result = await deliver_to_sink(self.sink, ev.data, self.name, peer, self.stats)
        if result.accepted:
            self.engine.accept(ev.engine, ev.session)
        else:
            self.engine.refuse(ev.engine, ev.session, f"the agent refused the bundle ({result.reason})")
        self._wake.set()
