"""What the TCPCL drivers (versions 4 and 3) share: one TCP connection driving a sans-I/O session.

:class:`SessionConn` holds the agent's sends (a future per transfer, settled
by the session's events), the writer (whole messages and segments as the
session hands them out) and the timer (the session's next deadline, woken
early when a deadline moves closer). A driver subclasses it with its session
and its reader (TCPCLv4 runs TLS there), and turns events into futures with
:meth:`SessionConn._resolve`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from hilnet.bundle.cos import Priority, class_of_rank
from hilnet.clock import Clock


class _Session(Protocol):
    @property
    def closed(self) -> bool: ...

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
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ranks: dict[int, int] = {}  # ticket -> rank of every transfer not finished
        self._wake = asyncio.Event()  # output is waiting
        self._kick = asyncio.Event()  # a deadline moved earlier
        self._sleeping_until: int | None = None
        self._done = asyncio.Event()  # the session ended

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

    def _handle(self, events: list[Any]) -> list[Any]:
        raise NotImplementedError

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
