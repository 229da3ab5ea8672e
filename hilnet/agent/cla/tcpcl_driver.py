"""What the TCPCL drivers (versions 4 and 3) share: connections driving sans-I/O sessions, and their table.

:class:`SessionConn` is one TCP connection and its session: the agent's sends
(a future per transfer, settled by the session's events), the writer (whole
messages and segments as the session hands them out), the timer (the
session's next deadline, woken early when a deadline moves closer) and the
close (the session's last octets written, then TCP closed). A driver
subclasses it with its session, its reader (TCPCLv4 runs TLS there) and what
it does with the session's events.

:class:`TcpclDriver` is the CLA around them: every connection, the sessions
up per peer (oldest first), which of them carries a bundle (classes of
service: bulk and standard on the oldest, expedited on the youngest that
carries nothing of a lower class), and a clean stop.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol

from hilnet.agent.cla.tcp_base import TcpClaBase, close_stream
from hilnet.bundle.cos import DEFAULT_RANK, Priority, class_of_rank
from hilnet.clock import Clock
from hilnet.errors import ClaError


class _Session(Protocol):
    @property
    def closed(self) -> bool: ...

    @property
    def established(self) -> bool: ...

    def start_transfer(self, data: bytes, now_ns: int, rank: int) -> int: ...

    def data_to_send(self, now_ns: int) -> list[bytes | memoryview]: ...

    def next_deadline_ns(self) -> int | None: ...

    def handle_timer(self, now_ns: int) -> list[Any]: ...


class SessionConn:
    """The writer, the timer and the agent's sends of one connection; ``session`` and ``writer`` set by the subclass."""

    session: _Session
    writer: asyncio.StreamWriter

    def __init__(self, clock: Clock):
        self.clock = clock
        self.peer: str | None = None  # the peer's node id once the session is up
        self.was_up = False
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ranks: dict[int, int] = {}  # ticket -> rank of every transfer not finished
        self._wake = asyncio.Event()  # output is waiting
        self._kick = asyncio.Event()  # a deadline moved earlier
        self._sleeping_until: int | None = None
        self._done = asyncio.Event()  # the session ended
        self.closed = asyncio.Event()  # ...and its last octets were written, TCP closed

    async def send(self, data: bytes, rank: int) -> None:
        """Hand one bundle to the session; returns when its peer acknowledged all of it, else raises."""
        ticket = self.session.start_transfer(data, self.clock.now_ns(), rank)
        fut = asyncio.get_running_loop().create_future()
        self._pending[ticket] = fut
        self._ranks[ticket] = rank
        self._poke()
        try:
            await fut
        finally:
            self._pending.pop(ticket, None)
            self._ranks.pop(ticket, None)

    def carries_below(self, klass: Priority) -> bool:
        """Whether a transfer of a class below ``klass`` is queued or under way here."""
        return any(class_of_rank(r) < klass for r in self._ranks.values())

    def terminate(self) -> None:
        """End the session cleanly (the protocol's goodbye); run() then closes the connection."""
        raise NotImplementedError

    def _handle(self, events: list[Any]) -> list[Any]:
        raise NotImplementedError

    async def _read_loop(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        """Drive the session until it ends; then write its last octets and close TCP."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # acks must not wait for Nagle
        self._poke()
        tasks = [asyncio.create_task(t) for t in (self._read_loop(), self._write_loop(), self._timer_loop())]
        try:
            await self._done.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            last = [] if self.writer.transport.is_closing() else self.session.data_to_send(self.clock.now_ns())
            try:
                await close_stream(self.writer, last)
            finally:
                self.closed.set()

    async def _write_loop(self) -> None:
        clock = self.clock
        while True:
            chunks = self.session.data_to_send(clock.now_ns())
            if chunks:
                for c in chunks:
                    self.writer.write(c)  # write() per chunk: writelines() would join (copy) them
                await self.writer.drain()
                self._poke()  # a segment sent may have started the transfer timeout
                continue
            if self.session.closed:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _timer_loop(self) -> None:
        clock = self.clock
        while not self.session.closed:
            deadline = self.session.next_deadline_ns()
            self._sleeping_until = deadline
            self._kick.clear()
            waits: set[asyncio.Task[object]] = {asyncio.create_task(self._kick.wait())}
            if deadline is not None:
                waits.add(asyncio.create_task(clock.wait_until_ns(deadline)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in waits:
                    t.cancel()
            self._handle(self.session.handle_timer(clock.now_ns()))
            self._poke()

    def _poke(self) -> None:
        self._wake.set()
        d = self.session.next_deadline_ns()
        if d != self._sleeping_until and (d is None or self._sleeping_until is None or d < self._sleeping_until):
            self._kick.set()
        if self.session.closed:
            self._kick.set()

    def _resolve(self, ticket: int, exc: Exception | None) -> None:
        fut = self._pending.pop(ticket, None)
        if fut is not None and not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)


class TcpclDriver(TcpClaBase):
    """A TCPCL CLA: its connections and the sessions up per peer. Subclasses make the connections.

    ``label`` names the protocol in errors; ``close_timeout_s`` bounds the wait for
    every connection to say goodbye and close on ``stop()`` (s).
    """

    label = "TCPCL"
    close_timeout_s = 5.0

    def __init__(self, *args: Any, **kwargs: Any):  # TcpClaBase's arguments
        super().__init__(*args, **kwargs)
        self._conns: set[SessionConn] = set()
        self._up: dict[str, list[SessionConn]] = {}  # peer -> sessions up, oldest first

    def _new_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, active: bool, expected_peer: str | None
    ) -> SessionConn:
        raise NotImplementedError

    async def _after_session(self, conn: SessionConn) -> None:
        """A session this side dialled has ended; before the connector's backoff starts."""

    def peers_up(self) -> set[str]:
        return {peer for peer, conns in self._up.items() if any(c.session.established for c in conns)}

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Send one bundle to ``peer``; returns when the peer acknowledged all of it.

        ``rank`` (class of service) picks the session, see the module docstring.
        """
        conns = [c for c in self._up.get(peer, ()) if c.session.established]
        if not conns:
            raise ClaError(f"no {self.label} session to {peer}")
        conn = conns[0]
        klass = class_of_rank(rank)
        if klass is Priority.EXPEDITED:
            free = [c for c in conns if not c.carries_below(klass)]
            conn = free[-1] if free else conns[-1]
        await conn.send(data, rank)

    # --- internals -------------------------------------------------------------

    async def _close_connections(self) -> None:
        for conn in list(self._conns):
            conn.terminate()
        # Until each has written its goodbye and closed: stop() cancels the connection tasks next.
        waits = [asyncio.create_task(c.closed.wait()) for c in self._conns]
        if waits:
            await asyncio.wait(waits, timeout=self.close_timeout_s)
            for t in waits:
                t.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            writer.close()
            return
        self._track_current_task()
        await self._run(self._new_conn(reader, writer, False, None))

    async def _run(self, conn: SessionConn) -> None:
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)
            if conn.peer and conn in self._up.get(conn.peer, ()):
                self._unregister(conn)

    async def _run_outgoing(
        self, peer: str, addr: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        conn = self._new_conn(reader, writer, True, peer)
        await self._run(conn)
        await self._after_session(conn)
        return conn.was_up  # only a session that came up resets the backoff

    def _register(self, conn: SessionConn) -> bool:
        """Add an established session; True if it is the peer's first (the peer just came up)."""
        if conn.peer is None:  # the session names the peer first; without it there is nobody to send to
            raise ClaError(f"{self.name}: a session came up without a peer node id")
        conns = self._up.setdefault(conn.peer, [])
        conns.append(conn)
        return len(conns) == 1

    def _unregister(self, conn: SessionConn) -> bool:
        """Remove a session; True if it was the peer's last (the peer is gone)."""
        conns = self._up.get(conn.peer or "", [])
        if conn not in conns:
            return False
        conns.remove(conn)
        if not conns:
            self._up.pop(conn.peer or "", None)
        return not conns
