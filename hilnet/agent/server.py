"""Drivers around :class:`~hilnet.agent.agent.Agent`: the stdio control channel
and the local Unix socket that ``hilnet send`` / ``hilnet recv`` use.

Both speak the JSON lines of :mod:`hilnet.agent.control`. The Unix socket adds
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
import time
from collections.abc import Callable

from hilnet import __version__
from hilnet.agent import control as ev
from hilnet.agent.agent import Agent, AgentConfig
from hilnet.errors import ControlError, HilnetError, StoreFullError
from hilnet.scenario.contact import Contact
from hilnet.units import scenario_to_wall_ns

log = logging.getLogger("hilnet.agent")

DEFAULT_LIFETIME_NS = 24 * 3600 * 10**9
MAX_CONCURRENT_INJECTS = 256  # bounds the memory of payloads waiting for their commit


def config_from_command(c: ev.Configure, default_store: str) -> AgentConfig:
    """The :class:`AgentConfig` a ``configure`` command describes.

    Contacts arrive in scenario time; the agent routes in plan time (wall ns
    since ``epoch_ns``), so window times are divided by ``scale`` while rate
    and light time, which are physics, stay as they are.
    """
    scale = c.scale or 1.0
    contacts = tuple(
        Contact(
            k.frm, k.to, scenario_to_wall_ns(k.start_ns, scale), scenario_to_wall_ns(k.end_ns, scale), k.rate, k.owlt_ns
        )
        for k in c.contacts
    )
    clas = []
    for cla in c.clas:
        d = {"type": cla.type}
        for name in ("listen", "port", "baud", "peer", "delay_hint_ns", "bits_per_byte"):
            v = getattr(cla, name, None)
            if v is not None:
                d[name] = (v.host, v.port) if hasattr(v, "host") else v
        if hasattr(cla, "peers"):
            d["peers"] = {eid: (hp.host, hp.port) for eid, hp in cla.peers.items()}
        clas.append(d)
    store = c.store
    return AgentConfig(
        node=c.node,
        eid=c.eid,
        store_path=store.path if store else default_store,
        quota_bytes=store.quota_bytes if store else None,
        quota_bundles=store.quota_bundles if store else None,
        clas=tuple(clas),
        contacts=contacts,
        nodes=dict(c.nodes),
        routes=dict(c.routes),
        epoch_ns=c.epoch_ns if c.epoch_ns else None,
    )


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
        if not line.strip():
            return None
        try:
            return ev.parse_command(line)
        except ControlError as e:
            self.send_event(ev.error_for(line, e, t_ns=self._now(), node=self._node()))
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

    async def execute(self, cmd: ev.Command) -> dict:
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
            return {"monotonic_ns": self._now(), "realtime_ns": time.time_ns()}
        if isinstance(cmd, ev.Configure):
            await agent.configure(config_from_command(cmd, self.default_store))
            return {"eid": agent.eid, "stored": agent.store.count(), "clas": [c.name for c in agent.clas]}
        if isinstance(cmd, ev.Inject):
            lifetime = cmd.lifetime_ns or DEFAULT_LIFETIME_NS
            try:
                if cmd.payload is not None:
                    key = await agent.submit(cmd.dest, cmd.payload, lifetime, priority=cmd.priority, tag=cmd.tag)
                else:
                    key = await agent.inject(
                        cmd.dest, cmd.size or 0, cmd.seed, lifetime, priority=cmd.priority, tag=cmd.tag
                    )
            except StoreFullError as e:
                raise HilnetError(f"refused: {e}") from None
            return {"bundle": key}
        if isinstance(cmd, ev.Status):
            return agent.status()
        if isinstance(cmd, ev.Shutdown):
            return {}
        raise ControlError(f"command {cmd.cmd!r} is not supported here")


def _stdout_writer() -> Callable[[bytes], None]:
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


async def _read_lines(reader: asyncio.StreamReader, limit: int):
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            if e.partial:
                yield e.partial
            return
        except asyncio.LimitOverrunError as e:
            # Discard the oversized line; report it and keep reading commands.
            await reader.readexactly(e.consumed)
            yield b'{"oversize": true}' + b" " * (limit + 1)
            continue
        yield line


async def run_agent(*, stdio: bool, config: AgentConfig | None, socket_path: str | None, default_store: str) -> int:
    """Run one agent until shutdown, stdin EOF (stdio mode) or SIGTERM/SIGINT. Returns exit status."""
    write = _stdout_writer() if stdio else (lambda data: sys.stderr.write(data.decode()))
    stopping = asyncio.Event()
    agent = Agent(emit=lambda e: write(ev.encode_event(e)))
    session = ControlSession(agent, write, default_store=default_store, on_shutdown=stopping.set)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stopping.set)
        except (NotImplementedError, RuntimeError):
            pass
    server = None
    try:
        if config is not None:
            await agent.configure(config)
        if socket_path:
            server = await _serve_unix(agent, socket_path, default_store)
        write(
            ev.encode_event(
                ev.Ready(t_ns=agent.clock.now_ns(), node=agent.node or None, version=__version__, pid=os.getpid())
            )
        )
        tasks = [loop.create_task(stopping.wait())]
        if stdio:
            reader = asyncio.StreamReader(limit=ev.MAX_LINE + 2)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

            async def pump() -> None:
                # Injects run concurrently so that their puts share group commits (one
                # fsync for many); any other command waits until those before it are done.
                injects: set[asyncio.Task] = set()
                try:
                    async for line in _read_lines(reader, ev.MAX_LINE):
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
                    stopping.set()  # EOF (the controller is gone) or shutdown

            tasks.append(loop.create_task(pump()))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
    finally:
        if server is not None:
            server.close()
            try:
                os.unlink(socket_path)
            except OSError:
                pass
        await agent.stop()
    return 0


async def _serve_unix(agent: Agent, path: str, default_store: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)  # a socket left by a crashed agent; we hold the store lock, so it was ours

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unsubscribe = None

        def write(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        session = ControlSession(agent, write, default_store=default_store, on_shutdown=lambda: None)
        try:
            async for line in _read_lines(reader, ev.MAX_LINE):
                obj = _maybe_subscribe(line)
                if obj is None:
                    await session.handle_line(line)
                else:

                    def deliver(key: str, payload: bytes) -> None:
                        write(
                            json.dumps(
                                {"event": "bundle", "bundle": key, "payload_b64": base64.b64encode(payload).decode()}
                            ).encode()
                            + b"\n"
                        )

                    try:
                        unsubscribe = agent.subscribe(obj["endpoint"], deliver)
                    except HilnetError as e:
                        write(json.dumps({"event": "error", "reason": str(e)}).encode() + b"\n")
                        continue
                    write(
                        json.dumps(
                            {
                                "event": "reply",
                                "cmd": "subscribe",
                                "id": obj.get("id"),
                                "result": {"endpoint": obj["endpoint"]},
                            }
                        ).encode()
                        + b"\n"
                    )
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if unsubscribe:
                unsubscribe()
            writer.close()

    server = await asyncio.start_unix_server(client, path=path, limit=ev.MAX_LINE + 2)
    os.chmod(path, 0o600)  # only this user may post bundles through it
    return server


def _maybe_subscribe(line: bytes) -> dict | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("cmd") == "subscribe" and isinstance(obj.get("endpoint"), str):
        return obj
    return None


def default_socket_path(node: str) -> str:
    """Where ``hilnet send``/``recv`` look for the agent of ``node``."""
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/hilnet-{os.getuid()}"
    return os.path.join(base, "hilnet", f"{node}.sock")
