"""``hilnet agent --host``: many nodes' agents in one process, each as if it had its own.

A process per node costs about 35 MB and a Python start; a thousand nodes do
not fit on a small machine that way. A host runs any number of
:class:`~hilnet.agent.agent.Agent` objects on one :class:`~hilnet.agent.host_loop.NodeLoop`,
each with its own store, CLAs, control session and event stream, and speaks
the per-agent control protocol (docs/control.md) for each of them over its
stdin and stdout, every line tagged with the node's name:

    controller -> host   NODE start            start an agent for NODE (it answers with ``ready``)
                         NODE {"cmd": ...}     a control command for NODE's agent
                         NODE kill             kill NODE's agent as ``kill -9`` would
    host -> controller   NODE {"event": ...}   an event of NODE's agent
                         NODE killed           NODE's kill is done; nothing more comes from it
                         NODE exited           NODE's agent shut down (``shutdown``, or end of input)
                         NODE unknown          a line for a node that is not running here

A kill ends exactly one node: its sockets vanish as a killed process's do,
its queued store writes are lost, its tasks end and it writes nothing more
(:meth:`~hilnet.agent.host_loop.NodeLoop.kill`); its store is opened again
when the controller starts it anew. The other nodes go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hilnet import __version__
from hilnet.agent import protocol as ev
from hilnet.agent.agent import Agent
from hilnet.agent.cla.limits import DescriptorShare, raise_descriptor_limit, share_descriptors
from hilnet.agent.host_loop import Incarnation, NodeLoop, incarnation
from hilnet.agent.jsonlines import read_lines
from hilnet.agent.server import ControlSession, pump_commands, stdout_writer
from hilnet.agent.shared_plan import PlanCache
from hilnet.errors import InputError

log = logging.getLogger("hilnet.agent.host")


class NodeLogFilter(logging.Filter):
    """Adds ``%(node)s`` to log records: the node whose code logged, or ``host``."""

    def filter(self, record: logging.LogRecord) -> bool:
        inc = incarnation()
        record.node = inc.node if inc is not None else "host"
        return True


class HostSession(ControlSession):
    """A hosted node's control session: a plan the host has parsed for another node is not parsed again."""

    def __init__(self, plans: PlanCache, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.plans = plans

    def parse(self, line: bytes) -> ev.Command | None:
        if isinstance(line, ev.OversizeLine):
            return super().parse(line)
        return self.plans.parse(line, super().parse)

    async def execute(self, cmd: ev.Command) -> dict[str, Any]:
        result = await super().execute(cmd)
        if isinstance(cmd, ev.Start) or (isinstance(cmd, ev.Configure) and not cmd.hold):
            inc = incarnation()
            if inc is not None:
                inc.running.set()  # from now on its connectors dial (host_loop.Incarnation.running)
        return result


class HostedNode:
    """One incarnation of one node in the host: its agent, control session and command stream."""

    def __init__(self, name: str, out: Callable[[str, bytes], None], plans: PlanCache):
        self.name = name
        self.inc = Incarnation(name)
        self._out = out
        self.agent = Agent(emit=lambda e: self.write(ev.encode_event(e)))
        self.commands = asyncio.StreamReader(limit=ev.MAX_LINE + 2)
        self.stopping = asyncio.Event()
        self.session = HostSession(
            plans, self.agent, self.write, default_store=f"hilnet-agent-{name}.store", on_shutdown=self.stopping.set
        )
        self.task: asyncio.Task[None] | None = None

    def write(self, data: bytes) -> None:
        if not self.inc.dead:  # a killed process writes nothing more
            self._out(self.name, data)


class Host:
    """The nodes of one host process, by name; ``out(node, payload)`` writes one tagged line."""

    def __init__(self, out: Callable[[str, bytes], None], share: DescriptorShare):
        self.out = out
        self.share = share
        self.nodes: dict[str, HostedNode] = {}
        self.plans = PlanCache()
        loop = asyncio.get_running_loop()
        if not isinstance(loop, NodeLoop):
            raise TypeError("a host runs on a NodeLoop")
        self.loop = loop

    def handle(self, line: bytes) -> None:
        """Take one line of input: ``NODE start``, ``NODE kill`` or ``NODE {command}``."""
        name, _, payload = line.strip().partition(b" ")
        node_name = name.decode("utf-8", "replace")
        if payload == b"start":
            self.start(node_name)
        elif payload == b"kill":
            self.kill(node_name)
        elif node_name in self.nodes and payload:
            self.nodes[node_name].commands.feed_data(payload + b"\n")
        elif payload:
            self.out(node_name, b"unknown")
        else:
            log.warning("host: ignored a line without a node and command: %r", line[:200])

    def oversize(self, head: ev.OversizeLine) -> None:
        """A line over the limit: its node answers with the ``error`` an agent gives for one."""
        name, _, payload = head.partition(b" ")
        node = self.nodes.get(name.decode("utf-8", "replace"))
        if node is None:
            log.warning("host: ignored a line longer than %d bytes", ev.MAX_LINE)
        else:
            node.session.parse(ev.OversizeLine(payload))  # writes the error event

    def start(self, name: str) -> None:
        if name in self.nodes:
            self.nodes[name].write(
                ev.encode_event(ev.Error(t_ns=0, node=name, reason=f"node {name} is running here already"))
            )
            return
        node = HostedNode(name, self.out, self.plans)
        self.nodes[name] = node
        self.share.agents += 1
        node.task = self.loop.create_task(self._run(node), context=node.inc.context)

    async def _run(self, node: HostedNode) -> None:
        agent = node.agent
        node.write(
            ev.encode_event(ev.Ready(t_ns=agent.clock.now_ns(), node=None, version=__version__, pid=os.getpid()))
        )
        try:
            await pump_commands(node.session, node.commands, node.stopping)
        finally:
            if not node.inc.dead:  # shutdown or end of input: stop as a process would, closing cleanly
                try:
                    await agent.stop()
                except Exception:
                    log.exception("node %s: stopping failed", node.name)
                self._forget(node)
                self.out(node.name, b"exited")

    def kill(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            self.out(name, b"unknown")
            return
        self.loop.kill(node.inc)
        store = getattr(node.agent, "store", None)  # opened by configure
        if store is not None:
            store.abandon()
        self._forget(node)
        self.out(name, b"killed")

    def _forget(self, node: HostedNode) -> None:
        if self.nodes.get(node.name) is node:
            del self.nodes[node.name]
            self.share.agents -= 1

    def end_of_input(self) -> None:
        for node in list(self.nodes.values()):
            node.commands.feed_eof()

    async def wait_all(self) -> None:
        tasks = [n.task for n in self.nodes.values() if n.task is not None]
        if tasks:
            await asyncio.wait(tasks)


async def run_host() -> int:
    """Host agents until the input ends (every node then stops cleanly) or SIGTERM/SIGINT. Returns exit status."""
    raise_descriptor_limit()
    share = DescriptorShare()
    share_descriptors(share)
    write = stdout_writer()

    def out(node: str, payload: bytes) -> None:
        write(node.encode() + b" " + (payload if payload.endswith(b"\n") else payload + b"\n"))

    host = Host(out, share)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=ev.MAX_LINE + 64)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    feeding = loop.create_task(_feed(host, reader))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, feeding.cancel)
    try:
        await feeding
    except asyncio.CancelledError:
        pass
    host.end_of_input()  # every node stops as an agent does at the end of its input
    await host.wait_all()
    return 0


async def _feed(host: Host, reader: asyncio.StreamReader) -> None:
    async for line in read_lines(reader):
        if isinstance(line, ev.OversizeLine):
            host.oversize(line)
        else:
            host.handle(line)


def host_main(listen_fds: Sequence[str] = ()) -> int:
    """Run :func:`run_host` on a :class:`NodeLoop` (what ``hilnet agent --host`` calls).

    ``listen_fds``: ``FD=HOST:PORT`` each, a descriptor this process inherited bound
    to that address, on which the agent that asks to listen there will listen."""
    reserved = dict(parse_listen_fd(item) for item in listen_fds)
    with asyncio.Runner(loop_factory=lambda: NodeLoop(reserved)) as runner:
        return runner.run(run_host())


def parse_listen_fd(item: str) -> tuple[tuple[str, int], int]:
    """``FD=HOST:PORT`` -> ((host, port), fd); InputError naming what was expected."""
    fd, _, address = item.partition("=")
    host, _, port = address.rpartition(":")
    if not (fd.isdigit() and host and port.isdigit()):
        raise InputError(f"--listen-fd {item!r}: expected FD=HOST:PORT, such as 5=127.0.0.1:4556")
    return (host.strip("[]"), int(port)), int(fd)
