"""One event loop for many agents, each of which can be killed alone as ``kill -9`` kills a process.

A host process (:mod:`hilnet.agent.host`) runs many nodes' agents on one
:class:`NodeLoop`. Each run of a node is an :class:`Incarnation`; code runs
as that incarnation when it runs in a context where :func:`incarnation`
returns it (the host starts every node's work with ``context=inc.context``,
and asyncio copies the context into every task, callback and accepted
connection that work creates). The loop files under the incarnation what
the kernel would close at a kill: its tasks, socket transports (TCP, TLS),
listening servers and the descriptors it watches (a serial port).

:meth:`NodeLoop.kill` then does what a ``kill -9`` does to a process:
sockets are aborted (no FIN handshake after a last write, nothing left in a
send buffer goes out, peers see the connection vanish), listeners close, a
watched descriptor is pointed at ``/dev/null`` (the pty's far end sees its
last holder go), and every task is cancelled. What those tasks would still
do on their way out finds closed transports and refused new ones: a dead
incarnation can create no task that runs and open no connection. Nothing
that asyncio schedules for the other nodes is touched.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from hilnet.errors import AgentError

_CURRENT: contextvars.ContextVar[Incarnation | None] = contextvars.ContextVar("hilnet_node", default=None)


def incarnation() -> Incarnation | None:
    """The node incarnation the running code belongs to (None: the host itself)."""
    return _CURRENT.get()


class Incarnation:
    """One run of one node in a host process, from its start to its kill or stop."""

    def __init__(self, node: str):
        self.node = node
        self.dead = False
        self.context = contextvars.copy_context()
        self.context.run(_CURRENT.set, self)
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self.transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self.servers: weakref.WeakSet[asyncio.AbstractServer] = weakref.WeakSet()
        self.fds: set[int] = set()
        # Set once the node runs on the run's clock (configured, or started after a held
        # configure). Until then it dials nothing: a held node's links are all down, and a
        # thousand connects stalled in them only pile up descriptors in the link engine.
        self.running = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Incarnation {self.node}{' dead' if self.dead else ''}>"


def _owner() -> Incarnation | None:
    inc = _CURRENT.get()
    if inc is not None and inc.dead:
        raise AgentError(f"node {inc.node} was killed")
    return inc


class NodeLoop(asyncio.SelectorEventLoop):
    """A selector event loop that knows which node incarnation owns each task, socket and descriptor."""

    def __init__(self, reserved: dict[tuple[str, int], int] | None = None) -> None:
        super().__init__()
        self.set_task_factory(_task_factory)
        self._devnull: int | None = None
        # (host, port) -> a descriptor already bound there, handed in by whoever reserved the
        # port (``hilnet agent --host --listen-fd``): the first server asked for that address
        # listens on it, so no other program can take the port before the agent listens.
        self.reserved = dict(reserved or {})

    # -- what a node opens -------------------------------------------------------

    def _make_socket_transport(self, sock: socket.socket, protocol: Any, *args: Any, **kwargs: Any) -> Any:
        inc = _owner()
        transport = super()._make_socket_transport(sock, protocol, *args, **kwargs)  # type: ignore[misc]
        if inc is not None:
            inc.transports.add(transport)
        return transport

    def _make_ssl_transport(self, rawsock: socket.socket, protocol: Any, *args: Any, **kwargs: Any) -> Any:
        inc = _owner()
        transport = super()._make_ssl_transport(rawsock, protocol, *args, **kwargs)  # type: ignore[misc]
        if inc is not None:
            inc.transports.add(transport)  # aborting the TLS transport aborts the socket under it
        return transport

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        inc = _owner()
        if inc is not None and not inc.running.is_set():
            await inc.running.wait()
        return await super().create_connection(*args, **kwargs)

    async def create_server(  # type: ignore[override]
        self, factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        inc = _owner()
        fd = self.reserved.pop((host, port), None) if isinstance(host, str) else None
        if fd is not None:
            for option in ("family", "flags", "reuse_address", "reuse_port"):  # settled when it was bound
                kwargs.pop(option, None)
            sock = socket.socket(fileno=fd)
            # As asyncio sets it on the sockets it binds: the connections this listener accepts
            # inherit it, and their TIME_WAIT then does not keep a restarted node from listening.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server = await super().create_server(factory, sock=sock, **kwargs)
        else:
            server = await super().create_server(factory, host, port, **kwargs)
        if inc is not None:
            inc.servers.add(server)
        return server

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        self._watch(fd)
        super().add_reader(fd, callback, *args)

    def add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:  # type: ignore[override]
        self._watch(fd)
        super().add_writer(fd, callback, *args)

    def _watch(self, fd: Any) -> None:
        inc = _owner()
        if inc is not None and isinstance(fd, int):
            inc.fds.add(fd)

    # -- the kill ------------------------------------------------------------------

    def kill(self, inc: Incarnation) -> None:
        """End ``inc`` as a ``kill -9`` ends a process (see the module docstring). Idempotent."""
        if inc.dead:
            return
        inc.dead = True
        for transport in list(inc.transports):
            abort = getattr(transport, "abort", None)
            if abort is not None:
                abort()
        for server in list(inc.servers):
            server.close()
        for fd in inc.fds:
            self.remove_reader(fd)
            self.remove_writer(fd)
            self._drop_descriptor(fd)
        for task in list(inc.tasks):
            task.cancel()

    def _drop_descriptor(self, fd: int) -> None:
        # The node's code still holds the number and will close it on its way out: point it at
        # /dev/null rather than closing it, so that close cannot hit a descriptor reused meanwhile.
        if self._devnull is None:
            self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.dup2(self._devnull, fd)
        except OSError:
            pass  # closed already

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # asyncio reports a callback's exception outside the callback's context: the owner is the handle's
        ran_in = getattr(context.get("handle"), "_context", None)
        inc = ran_in.get(_CURRENT) if isinstance(ran_in, contextvars.Context) else _CURRENT.get()
        if inc is not None and inc.dead and isinstance(context.get("exception"), asyncio.CancelledError):
            return  # a killed node's callbacks finding their tasks cancelled: the kill, not a bug
        super().call_exception_handler(context)

    def close(self) -> None:
        if self._devnull is not None:
            os.close(self._devnull)
            self._devnull = None
        super().close()


def _task_factory(
    loop: asyncio.AbstractEventLoop,
    coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    task = asyncio.Task(coro, loop=loop, context=context)
    inc = _CURRENT.get() if context is None else context.get(_CURRENT)
    if inc is not None:
        if inc.dead:
            task.cancel()  # cancelled before its first step: its body never runs
        else:
            inc.tasks.add(task)
    return task
