"""Drivers around :class:`~hilnet.agent.agent.Agent`: the stdio control channel
and the local Unix socket that ``hilnet send`` / ``hilnet recv`` use.

Both speak the JSON lines of :mod:`hilnet.agent.protocol`. The Unix socket adds
one command for applications, ``{"cmd": "subscribe", "endpoint": EID}``: the
connection then receives ``{"event": "bundle", "bundle": KEY, "payload_b64": ...}``
for each bundle delivered to that endpoint (docs/control.md).

Logs go to stderr; stdout carries only events, one JSON line each.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from hilnet import __version__
from hilnet.agent import protocol as ev
from hilnet.agent.agent import Agent
from hilnet.agent.config import AgentConfig, config_from_command
from hilnet.agent.jsonlines import OversizeLine, read_lines
from hilnet.agent.local_socket import peer_refusal, prepare_socket_path
from hilnet.bundle.bpsec import Protection
from hilnet.bundle.cos import ClassOfService, Priority
from hilnet.errors import ControlError, HilnetError, StoreFullError

log = logging.getLogger("hilnet.agent")

DEFAULT_LIFETIME_NS = 24 * 3600 * 10**9
MAX_CONCURRENT_INJECTS = 256  # bounds the memory of payloads waiting for their commit


class ControlSession:
    """Executes control commands against one agent and writes events through ``write``."""

    def __init__(
        self, agent: Agent, write: Callable[[bytes], None], *, default_store: str, on_shutdown: Callable[[], None]
    ):
        self.agent = agent
        self.write = write
        self.default_store = default_store
        self.on_shutdown = on_shutdown

    def _now(self) -> int:
        return self.agent.clock.now_ns()

    def _node(self) -> str | None:
        return self.agent.node or None

    def send_event(self, event: ev.Event) -> None:
        self.write(ev.encode_event(event))

    async def handle_line(self, line: bytes) -> None:
        cmd = self.parse(line)
        if cmd is not None:
            await self.run(cmd)

    def parse(self, line: bytes) -> ev.Command | None:
        """The command on ``line``; None (after an error event) if there is none."""
        if isinstance(line, OversizeLine):
            oversize = ControlError(f"line is longer than {ev.MAX_LINE} bytes")
            self.send_event(ev.error_for(line, oversize, t_ns=self._now(), node=self._node()))
            return None
        if not line.strip():
            return None
        try:
            return ev.parse_command(line)
        except ControlError as e:
            self.send_event(ev.error_for(line, e, t_ns=self._now(), node=self._node()))
        except Exception as e:  # a parser bug must not end the agent: the line is answered, the agent lives
            log.exception("control line could not be parsed")
            bug = ControlError(f"internal error: {type(e).__name__}: {e}")
            self.send_event(ev.error_for(line, bug, t_ns=self._now(), node=self._node()))
        return None

    async def run(self, cmd: ev.Command) -> None:
        """Execute ``cmd`` and write its reply or error event."""
        try:
            result = await self.execute(cmd)
        except HilnetError as e:
            self.send_event(ev.Error(t_ns=self._now(), node=self._node(), reason=str(e), id=cmd.id, cmd=cmd.cmd))
            return
        except Exception as e:  # a bug must not take the node down with its store
            log.exception("command %s failed", cmd.cmd)
            self.send_event(
                ev.Error(
                    t_ns=self._now(),
                    node=self._node(),
                    reason=f"internal error: {type(e).__name__}: {e}",
                    id=cmd.id,
                    cmd=cmd.cmd,
                )
            )
            return
        self.send_event(ev.reply_to(cmd, t_ns=self._now(), node=self._node(), result=result))
        if isinstance(cmd, ev.Shutdown):
            self.on_shutdown()

    async def execute(self, cmd: ev.Command) -> dict[str, Any]:
        """The ``result`` of the reply to ``cmd``; raises HilnetError for the error event."""
        agent = self.agent
        if isinstance(cmd, ev.Hello):
            return {
                "version": __version__,
                "protocol": ev.PROTOCOL_VERSION,
                "node": agent.node or None,
                "pid": os.getpid(),
                "time_ns": self._now(),
            }
        if isinstance(cmd, ev.Time):
            return {"monotonic_ns": self._now(), "realtime_ns": agent.realtime_ns()}
        if isinstance(cmd, ev.Configure):
            await agent.configure(config_from_command(cmd, self.default_store))
            return {"eid": agent.eid, "stored": agent.store.count(), "clas": [c.name for c in agent.clas]}
        if isinstance(cmd, ev.Start):
            await agent.start_at(cmd.epoch_ns)
            return {}
        if isinstance(cmd, ev.Inject):
            return {"bundle": await self._inject(cmd)}
        if isinstance(cmd, ev.Status):
            return agent.status()
        if isinstance(cmd, ev.Shutdown):
            return {}
        raise ControlError(f"command {cmd.cmd!r} is not supported here")

    async def _inject(self, cmd: ev.Inject) -> str:
        lifetime = cmd.lifetime_ns or DEFAULT_LIFETIME_NS
        kw: dict[str, Any] = dict(cos=_cos(cmd), tag=cmd.tag, hop_limit=cmd.hop_limit)
        kw["protection"] = Protection.named(cmd.integrity, cmd.confidentiality)
        try:
            if cmd.payload is not None:
                return await self.agent.submit(cmd.dest, cmd.payload, lifetime, **kw)
            return await self.agent.inject(cmd.dest, cmd.size or 0, cmd.seed, lifetime, **kw)
        except StoreFullError as e:
            raise HilnetError(f"refused: {e}") from None


def _cos(cmd: ev.Inject) -> ClassOfService:
    """The class of service an inject asks for (the ordinal counts for expedited only, as in ION)."""
    priority = Priority(cmd.priority)
    return ClassOfService(priority, cmd.ordinal if priority is Priority.EXPEDITED else 0)


def stdout_writer() -> Callable[[bytes], None]:
    """Batched event writer: events written in one loop iteration leave in one write(2).

    A write per event was several system calls per bundle per agent (stdout is
    unbuffered under PYTHONUNBUFFERED, as the controller starts agents). The
    flush is scheduled on the running loop, so no event waits longer than the
    callbacks already queued.
    """
    out = sys.stdout.buffer
    pending: list[bytes] = []

    def flush() -> None:
        data = memoryview(b"".join(pending))
        pending.clear()
        try:
            while data:  # a raw pipe may take part of a large write
                data = data[out.write(data) or 0 :]
            out.flush()
        except (BrokenPipeError, ValueError):
            pass  # the controller went away; the agent keeps its store and stops on EOF

    def write(data: bytes) -> None:
        pending.append(data)
        if len(pending) > 1:
            return  # a flush is scheduled already
        try:
            asyncio.get_running_loop().call_soon(flush)
        except RuntimeError:  # not on the loop (start-up, shutdown): flush now
            flush()

    return write


def _stderr_write(data: bytes) -> None:
    sys.stderr.write(data.decode())


async def run_agent(*, stdio: bool, config: AgentConfig | None, socket_path: str | None, default_store: str) -> int:
    """Run one agent until shutdown, stdin EOF (stdio mode) or SIGTERM/SIGINT. Returns exit status."""
    write = stdout_writer() if stdio else _stderr_write
    stopping = asyncio.Event()
    agent = Agent(emit=lambda e: write(ev.encode_event(e)))
    session = ControlSession(agent, write, default_store=default_store, on_shutdown=stopping.set)
    _stop_on_signals(stopping)
    close_socket: Callable[[], None] | None = None
    try:
        if config is not None:
            await agent.configure(config)
        if socket_path:
            close_socket = await _serve_unix(agent, socket_path, default_store)
        write(
            ev.encode_event(
                ev.Ready(t_ns=agent.clock.now_ns(), node=agent.node or None, version=__version__, pid=os.getpid())
            )
        )
        await _run_until_stopped(session, stopping, stdio)
    finally:
        if close_socket is not None:
            close_socket()
        await agent.stop()
    return 0


def _stop_on_signals(stopping: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):
            pass


async def _run_until_stopped(session: ControlSession, stopping: asyncio.Event, stdio: bool) -> None:
    """Wait for ``stopping``, running the commands on stdin meanwhile in ``stdio`` mode."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = [loop.create_task(stopping.wait())]
    if stdio:
        reader = asyncio.StreamReader(limit=ev.MAX_LINE + 2)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks.append(loop.create_task(pump_commands(session, reader, stopping)))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()


async def pump_commands(session: ControlSession, reader: asyncio.StreamReader, stopping: asyncio.Event) -> None:
    """Run the commands ``reader`` brings until EOF (the controller is gone) or shutdown; then set ``stopping``.

    Injects run concurrently so that their puts share group commits (one fsync
    for many); any other command waits until those before it are done.
    """
    loop = asyncio.get_running_loop()
    injects: set[asyncio.Task[None]] = set()
    try:
        async for line in read_lines(reader):
            cmd = session.parse(line)
            if cmd is None:
                continue
            if isinstance(cmd, ev.Inject):
                if len(injects) >= MAX_CONCURRENT_INJECTS:
                    await asyncio.wait(injects, return_when=asyncio.FIRST_COMPLETED)
                task = loop.create_task(session.run(cmd))
                injects.add(task)
                task.add_done_callback(injects.discard)
                continue
            if injects:
                await asyncio.wait(injects)
            await session.run(cmd)
            if stopping.is_set():
                return
        if injects:
            await asyncio.wait(injects)
    finally:
        stopping.set()


async def _serve_unix(agent: Agent, path: str, default_store: str) -> Callable[[], None]:
    """Serve applications on the Unix socket ``path``; returns what closes it (and removes the file)."""
    prepare_socket_path(path)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refusal = peer_refusal(writer.get_extra_info("socket"))
        if refusal is not None:
            log.warning("control socket %s: refused a connection: %s", path, refusal)
            writer.write(json.dumps({"event": "error", "reason": refusal}).encode() + b"\n")
            writer.close()
            return
        await _AppClient(agent, writer, default_store).run(reader)

    server = await asyncio.start_unix_server(client, path=path, limit=ev.MAX_LINE + 2)
    os.chmod(path, 0o600)  # only this user may post bundles through it

    def close() -> None:
        server.close()
        try:
            os.unlink(path)
        except OSError:
            pass

    return close


class _AppClient:
    """One application on the Unix socket: control commands, plus ``subscribe``."""

    def __init__(self, agent: Agent, writer: asyncio.StreamWriter, default_store: str):
        self.agent = agent
        self.writer = writer
        self.session = ControlSession(agent, self.write, default_store=default_store, on_shutdown=lambda: None)
        self.unsubscribes: list[Callable[[], None]] = []

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def write_json(self, obj: dict[str, Any]) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    async def run(self, reader: asyncio.StreamReader) -> None:
        try:
            async for line in read_lines(reader):
                obj = _maybe_subscribe(line)
                if obj is None:
                    await self.session.handle_line(line)
                else:
                    self.subscribe(obj)
                await self.writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for unsubscribe in self.unsubscribes:
                unsubscribe()
            self.writer.close()

    def subscribe(self, obj: dict[str, Any]) -> None:
        def deliver(key: str, payload: bytes) -> None:
            self.write_json({"event": "bundle", "bundle": key, "payload_b64": base64.b64encode(payload).decode()})

        try:
            self.unsubscribes.append(self.agent.subscribe(obj["endpoint"], deliver))
        except HilnetError as e:
            self.write_json({"event": "error", "reason": str(e)})
            return
        self.write_json(
            {"event": "reply", "cmd": "subscribe", "id": obj.get("id"), "result": {"endpoint": obj["endpoint"]}}
        )


def _maybe_subscribe(line: bytes) -> dict[str, Any] | None:
    if isinstance(line, OversizeLine):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("cmd") == "subscribe" and isinstance(obj.get("endpoint"), str):
        return obj
    return None
