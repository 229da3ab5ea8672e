"""SerialCla: the serial convergence layer on a UART or pty, for asyncio.

A thin driver around :class:`~hilnet.agent.cla.serial_proto.SerialSession`:
it opens the port raw and non-blocking (``os.open`` + ``termios``; pyserial's
blocking API would need a thread per port), reads through
``loop.add_reader``, writes what the session hands out, and wakes the session
at its deadlines on the injected clock. If the port fails (EIO when a pty's
far side goes away, a USB adapter unplugged) it is closed and reopened with
backoff; the session, and so every partial transfer, lives on.

``send()`` waits through outages: the transfer resumes when the peer is back.
It raises :class:`~hilnet.errors.ClaError` when the peer stays down longer
than ``outage_grace_ns``, and :class:`~hilnet.errors.TransferRefusedError`
when the peer's agent refused the bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import termios
import tty
from collections import Counter
from collections.abc import Coroutine, Hashable
from typing import Any

from hilnet.agent.cla.base import BundleSink, deliver_to_sink
from hilnet.agent.cla.budget import MemoryBudget
from hilnet.agent.cla.serial_proto import (
    BundleAcked,
    BundleReceived,
    BundleRefused,
    Event,
    FrameRejected,
    PeerDown,
    PeerUp,
    SerialConfig,
    SerialSession,
)
from hilnet.agent.cla.serial_recv import TransferKey
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import ClaError, EndpointError, TooBigForPeerError, TransferRefusedError

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
READ_SIZE = 65536


def open_port(path: str, baud: int, bits_per_byte: int = 10, rtscts: bool = False) -> int:
    """Open a UART or pty raw, non-blocking; returns the descriptor.

    8N1, or 8N2 when ``bits_per_byte`` is 11 (other framings: set the UART up
    yourself; the CLA only paces by ``bits_per_byte``). ``rtscts`` turns RTS/CTS
    hardware flow control on (the cable must carry both lines); off otherwise.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise EndpointError(f"{path}: cannot open: {e.strerror or e}") from None
    try:
        if os.isatty(fd):
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[2] &= ~(termios.CSTOPB | termios.PARENB | termios.CRTSCTS)
            attrs[2] |= termios.CLOCAL | termios.CREAD | termios.CS8
            if bits_per_byte == 11:
                attrs[2] |= termios.CSTOPB
            if rtscts:
                attrs[2] |= termios.CRTSCTS
            speed = getattr(termios, f"B{baud}", None)
            if speed is not None:  # a pty ignores it; a UART needs a standard rate
                attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (OSError, termios.error) as e:
        os.close(fd)
        raise EndpointError(f"{path}: cannot set raw mode: {e}") from None
    return fd


class SerialCla:
    """Serial convergence layer on one port, to one peer. Implements ConvergenceLayer."""

    acknowledges = True  # send() returns on the peer's final ack

    def __init__(
        self,
        node_id: str,
        port: str,
        baud: int,
        peer: str | None = None,
        clock: Clock | None = None,
        name: str = "serial",
        *,
        delay_hint_ns: int | None = None,
        segment_size: int = 1024,
        bits_per_byte: int = 10,
        rtscts: bool = False,
        max_bundle: int = 64 * 2**20,
        outage_grace_ns: int = 300 * NS_PER_S,
        reopen_min_ns: int = NS_PER_S // 10,
        reopen_max_ns: int = 5 * NS_PER_S,
        budget: MemoryBudget | None = None,
    ):
        self.name = name
        self.port = port
        self.rtscts = rtscts
        self.clock: Clock = clock or MonotonicClock()
        self.config = SerialConfig(
            node_id=node_id,
            baud=baud,
            delay_ns=delay_hint_ns,
            peer=peer,
            segment_size=segment_size,
            bits_per_byte=bits_per_byte,
            max_bundle=max_bundle,
            budget=budget,
        )
        self.outage_grace_ns = outage_grace_ns
        self.reopen_min_ns = reopen_min_ns
        self.reopen_max_ns = reopen_max_ns
        self.stats: Counter[str] = Counter()
        self.session: SerialSession | None = None
        self._sink: BundleSink  # given by start()
        self._fd: int | None = None
        self._wbuf = bytearray()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: dict[Hashable, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._down_since: int | None = None
        self._stopping = False

    # -- ConvergenceLayer -------------------------------------------------

    async def start(self, sink: BundleSink) -> None:
        """Open the port and start the session; raises EndpointError if the port cannot be opened."""
        self._sink = sink
        self._open()
        session = self.session = SerialSession(self.config, self.clock.now_ns(), stats=self.stats)
        self._down_since = self.clock.now_ns()
        self._task = asyncio.get_running_loop().create_task(self._run(session), name=f"{self.name}-cla")

    def peers_up(self) -> set[str]:
        s = self.session
        return {s.peer_eid} if s is not None and s.up and s.peer_eid else set()

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Send one bundle to ``peer``; returns once it committed it. ``rank``: its class of service."""
        session = self.session
        if session is None or self._stopping:
            raise ClaError(f"{self.name}: not running")
        if peer not in self.peers_up():
            raise ClaError(f"{self.name}: no session to {peer}")
        bundle_id = next(self._ids)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[bundle_id] = fut
        session.send_bundle(bundle_id, data, rank)
        self._wake.set()
        try:
            await fut
        finally:
            self._waiting.pop(bundle_id, None)
            if not fut.done() or fut.cancelled():
                session.cancel(bundle_id)  # the caller gave up: stop using the line for it

    async def stop(self) -> None:
        """Stop the session and close the port; pending sends fail with ClaError."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for t in list(self._tasks):
            t.cancel()
        self._fail_all(ClaError(f"{self.name}: stopped"))
        self._close()

    # -- the port ---------------------------------------------------------

    def _open(self) -> None:
        fd = self._fd = open_port(self.port, self.config.baud, self.config.bits_per_byte, self.rtscts)
        asyncio.get_running_loop().add_reader(fd, self._on_readable, fd)
        self.stats["port_opened"] += 1

    def _close(self) -> None:
        if self._fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        loop.remove_writer(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None
        self._wbuf.clear()

    def _port_failed(self, err: OSError | None) -> None:
        self.stats["port_errors"] += 1
        log.warning(
            "%s: port %s failed (%s); reopening",
            self.name,
            self.port,
            errno.errorcode.get(err.errno, err) if err and err.errno else "EOF",
        )
        self._close()
        self._spawn(self._reopen())

    async def _reopen(self) -> None:
        delay = self.reopen_min_ns
        while not self._stopping:
            await self.clock.wait_until_ns(self.clock.now_ns() + delay)
            try:
                self._open()
            except EndpointError as e:
                log.debug("%s: %s", self.name, e)
                delay = min(2 * delay, self.reopen_max_ns)
                continue
            self.stats["port_reopened"] += 1
            self._wake.set()
            return

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            self._port_failed(e)
            return
        if not data:
            self._port_failed(None)
            return
        session = self._live()
        self._handle(session, session.feed(data, self.clock.now_ns()))
        self._flush(session)
        self._wake.set()  # deadlines may have moved (an ACK is now due)

    def _flush(self, session: SerialSession) -> None:
        if self._fd is None:
            return  # the line is down for us: what the session would send is not taken
        out = session.data_to_send(self.clock.now_ns())
        if out:
            self._wbuf += out
        self._write()

    def _write(self) -> None:
        fd = self._fd
        if fd is None or not self._wbuf:
            return
        try:
            n = os.write(fd, self._wbuf)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._port_failed(e)
            return
        del self._wbuf[:n]
        loop = asyncio.get_running_loop()
        if self._wbuf:
            loop.add_writer(fd, self._write)
        else:
            loop.remove_writer(fd)

    # -- the session's clock and events -----------------------------------

    async def _run(self, session: SerialSession) -> None:
        while True:
            now = self.clock.now_ns()
            self._handle(session, session.tick(now))
            self._flush(session)
            self._check_grace(now)
            deadline = session.next_deadline_ns()
            if self._fd is None:
                # Output waits for the port; only the session's timers run meanwhile.
                deadline = max(deadline, now + NS_PER_S // 20)
            if self._down_since is not None and self._waiting:
                deadline = min(deadline, self._down_since + self.outage_grace_ns)
            if deadline <= self.clock.now_ns():
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.wait_until_ns(deadline))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    def _live(self) -> SerialSession:
        if self.session is None:
            raise ClaError(f"{self.name}: not started")
        return self.session

    def _handle(self, session: SerialSession, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, BundleReceived):
                self._spawn(self._deliver(session, ev.key, ev.data))
            elif isinstance(ev, BundleAcked):
                fut = self._waiting.get(ev.bundle_id)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif isinstance(ev, BundleRefused):
                fut = self._waiting.get(ev.bundle_id)
                if fut is not None and not fut.done():
                    error = TooBigForPeerError if ev.reason == "too-large" else TransferRefusedError
                    fut.set_exception(error(f"{self.name}: peer refused the bundle ({ev.reason})"))
            elif isinstance(ev, PeerUp):
                self._down_since = None
                self._notify(ev.eid, True, {"restarted": ev.restarted})
            elif isinstance(ev, PeerDown):
                self._down_since = self.clock.now_ns()
                self._notify(ev.eid, False, {"reason": ev.reason})
            elif isinstance(ev, FrameRejected):
                log.debug("%s: rejected a frame: %s", self.name, ev.reason)

    def _notify(self, eid: str, up: bool, detail: dict[str, Any]) -> None:
        try:
            self._sink.session_changed(self.name, eid, up, detail)
        except Exception:  # the agent's bug must not stop the link
            log.exception("%s: session_changed failed", self.name)

    async def _deliver(self, session: SerialSession, key: TransferKey, data: bytes) -> None:
        result = await deliver_to_sink(self._sink, data, self.name, session.peer_eid, self.stats)
        if result.accepted:
            session.commit(key)
        else:
            session.refuse(key)  # not committed, so not acked: the sender keeps its copy and retries
        self._wake.set()

    def _check_grace(self, now: int) -> None:
        if self._down_since is not None and now - self._down_since >= self.outage_grace_ns:
            self._fail_all(ClaError(f"{self.name}: peer down for over {self.outage_grace_ns / NS_PER_S:g} s"))

    def _fail_all(self, err: ClaError) -> None:
        for bundle_id, fut in list(self._waiting.items()):
            if not fut.done():
                fut.set_exception(err)
            if self.session is not None:
                self.session.cancel(bundle_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
