"""What the TCP convergence layers (TCPCLv4, MTCP) share: one listener, one connector per peer.

A subclass says what to do with a connection (:meth:`TcpClaBase._accept` for
one the listener took, :meth:`TcpClaBase._run_outgoing` for one a connector
opened) and how to end them on ``stop()`` (:meth:`TcpClaBase._close_connections`).
Here live the listener, the task bookkeeping that lets ``stop()`` cancel every
connection, and the reconnect policy: after a failed connect or an ended
connection a connector waits, doubling the wait from ``reconnect_min_s`` up to
``reconnect_max_s`` (RFC 9174 4.1: never retry at once), and starts again from
the minimum after a connection the subclass calls good. When the agent says a
planned contact with a peer opens (:meth:`TcpClaBase.contact_started`), a
connector that is not in a session drops its wait, or its pending connect,
and connects at once: a connect sent while the link was down waits for the
kernel's next SYN (a second or more later), and at a scenario's time scale a
wall second can be a scenario minute.

Every connection caps the kernel's retransmission backoff at one second
(``TCP_RTO_MAX_MS``, Linux 6.15 and later; elsewhere the default stays): a
link that was down longer than a few round trips, which the agent is not told
about, otherwise leaves its stream silent for up to two minutes after it is
back, while the store-and-forward agents above it could be sending.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Coroutine, Mapping
from typing import Any, TypeVar

from hilnet.agent.cla.base import BundleSink
from hilnet.agent.cla.limits import ACCEPT_BACKLOG, Resources
from hilnet.agent.cla.port_owner import listen_error
from hilnet.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
STREAM_LIMIT = 4 << 20  # bytes a StreamReader buffers before it pauses the socket

T = TypeVar("T")
TCP_RTO_MAX_MS = getattr(socket, "TCP_RTO_MAX_MS", 44)  # linux/tcp.h; Python 3.11 does not name it
RTO_MAX_MS = 1000  # the least the kernel takes


class _Kicked(Exception):
    """A planned contact opened while a connector waited: start again at once."""


async def close_stream(writer: asyncio.StreamWriter, last: list[bytes | memoryview]) -> None:
    """Write ``last`` (a SESS_TERM...), give it a short chance to leave, then close; a stalled link gets an abort."""
    transport = writer.transport
    for chunk in last:
        writer.write(chunk)
    try:
        await asyncio.wait_for(writer.drain(), timeout=1.0)
    except (TimeoutError, ConnectionError, OSError):
        pass
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
    except (TimeoutError, ConnectionError, OSError):
        transport.abort()


class TcpClaBase:
    """Listener and connectors of a TCP convergence layer; subclasses add the protocol.

    ``listen`` is ``(host, port)`` (port 0 picks a free one, see :attr:`address`)
    or None; ``peers`` maps node ids to the ``(host, port)`` a connector keeps
    reaching; ``connect_timeout_s`` bounds one connect (s).
    """

    _connect_limit = STREAM_LIMIT  # StreamReader limit of outgoing connections (bytes)
    acknowledges = True  # send() returns once the peer committed the bundle (TCPCL); MTCP says False

    def __init__(
        self,
        node_id: str,
        listen: tuple[str, int] | None,
        peers: Mapping[str, tuple[str, int]] | None,
        clock: Clock | None,
        name: str,
        reconnect_min_s: float,
        reconnect_max_s: float,
        connect_timeout_s: float,
        resources: Resources | None = None,
    ):
        self.node_id = node_id
        self.listen = listen
        self.peers = dict(peers or {})
        self.clock: Clock = clock or MonotonicClock()
        # The agent's limits, shared with its other CLAs; a CLA built alone gets its own.
        self.resources = resources or Resources(clock=self.clock)
        self.name = name
        self.stats: Counter[str] = Counter()
        self.reconnect_min_ns = int(reconnect_min_s * NS_PER_S)
        self.reconnect_max_ns = int(reconnect_max_s * NS_PER_S)
        self.connect_timeout_s = connect_timeout_s
        self.sink: BundleSink
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._kicks: dict[str, asyncio.Event] = {}  # peer -> set when a planned contact with it opens

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the listener is bound (host, port), once started."""
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[:2]

    async def start(self, sink: BundleSink) -> None:
        self.sink = sink
        self._stopping = False
        if self.listen is not None:
            try:
                self._server = await asyncio.start_server(
                    self._admit, self.listen[0], self.listen[1], limit=STREAM_LIMIT, backlog=ACCEPT_BACKLOG
                )
            except OSError as e:
                raise listen_error(self.name, self.listen, e) from None
        for peer, addr in self.peers.items():
            self._spawn(self._connector(peer, addr))

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        await self._close_connections()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def contact_started(self, peer: str) -> None:
        """A planned contact with ``peer`` (a node id) opens: its connectors not in a session connect now."""
        for key in self.peers:
            if key == peer:
                kick = self._kicks.pop(key, None)
                if kick is not None:
                    self.stats["contact_kicks"] += 1
                    kick.set()

    # --- for subclasses ----------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection the listener took, until it ends."""
        raise NotImplementedError

    async def _run_outgoing(
        self, peer: str, addr: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve the connection a connector opened to ``peer``, until it ends; True if it was good."""
        raise NotImplementedError

    async def _close_connections(self) -> None:
        """End connections cleanly on stop(): after the listener closed, before tasks are cancelled."""

    def _track_current_task(self) -> None:
        """Let stop() cancel the running task (the listener starts one per connection)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- internals -----------------------------------------------------------------

    async def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve an accepted connection if the agent's connection limit allows it, else close it at once."""
        addr = writer.get_extra_info("peername") or ("?", 0)
        if not self.resources.admit(self.name, f"{addr[0]}:{addr[1]}"):
            self.stats["refused_connection_limit"] += 1
            writer.transport.abort()  # before the descriptors run out and real peers cannot connect
            return
        cap_backoff(writer)
        try:
            await self._accept(reader, writer)
        finally:
            self.resources.leave()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connector(self, peer: str, addr: tuple[str, int]) -> None:
        delay = self.reconnect_min_ns
        while not self._stopping:
            kick = self._kicks.setdefault(peer, asyncio.Event())
            try:
                reader, writer = await _unless_kicked(
                    kick,
                    asyncio.wait_for(
                        asyncio.open_connection(addr[0], addr[1], limit=self._connect_limit), self.connect_timeout_s
                    ),
                )
            except _Kicked:
                delay = self.reconnect_min_ns
                continue
            except (TimeoutError, OSError) as exc:
                self.stats["connect_failed"] += 1
                log.debug("%s: connect to %s at %s:%d failed: %s", self.name, peer, addr[0], addr[1], exc)
            else:
                cap_backoff(writer)
                if await self._run_outgoing(peer, addr, reader, writer):
                    delay = self.reconnect_min_ns
                kick = self._kicks.setdefault(peer, asyncio.Event())
            # RFC 9174 4.1: never retry at once; back off exponentially, capped (a planned contact ends the wait).
            try:
                await _unless_kicked(kick, self.clock.wait_until_ns(self.clock.now_ns() + delay))
            except _Kicked:
                delay = self.reconnect_min_ns
                continue
            delay = min(delay * 2, self.reconnect_max_ns)


def cap_backoff(writer: asyncio.StreamWriter) -> None:
    """Cap the connection's retransmission backoff at ``RTO_MAX_MS`` where the kernel can (see module doc)."""
    sock = writer.get_extra_info("socket")
    if sys.platform != "linux" or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # the option number is Linux's
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, RTO_MAX_MS)
    except OSError:  # an older kernel, or not Linux: its own backoff then
        pass


async def _unless_kicked(kick: asyncio.Event, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`_Kicked` (``work`` cancelled) if ``kick`` is set first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(kick.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    await asyncio.gather(task, return_exceptions=True)  # let the abandoned connect close its socket
    raise _Kicked


async def read_within(reader: asyncio.StreamReader, clock: Clock, deadline_ns: int) -> bytes | None:
    """The next octets ``reader`` brings (b"" at EOF), or None if none came by ``deadline_ns`` of ``clock``."""
    read = asyncio.ensure_future(reader.read(1 << 20))
    timer = asyncio.ensure_future(clock.wait_until_ns(deadline_ns))
    try:
        await asyncio.wait((read, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not read.done():
            read.cancel()
    if read.done() and not read.cancelled():
        return read.result()
    return None
