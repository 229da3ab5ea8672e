"""NodeLoop: killing one node's incarnation ends what it owns, as ``kill -9`` ends a process, and nothing else."""

from __future__ import annotations

import asyncio
import os

import pytest

from hilnet.agent.cla.limits import FD_HEADROOM, HOSTED_AGENT_FDS, DescriptorShare, Resources, share_descriptors
from hilnet.agent.host_loop import Incarnation, NodeLoop, incarnation
from hilnet.agent.protocol import Limits


def run_on_node_loop(coro_fn):
    with asyncio.Runner(loop_factory=NodeLoop) as runner:
        return runner.run(coro_fn())


async def _echo_server(inc: Incarnation) -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def listen() -> asyncio.Server:
        return await asyncio.start_server(echo, "127.0.0.1", 0)

    server = await asyncio.get_running_loop().create_task(listen(), context=inc.context)
    return server, server.sockets[0].getsockname()[1]


def test_a_kill_aborts_the_nodes_connections_and_cancels_its_tasks_only() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, NodeLoop)
        a, b = Incarnation("a"), Incarnation("b")
        b.running.set()
        server, port = await _echo_server(a)
        _, port_b = await _echo_server(b)

        async def client(p: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection("127.0.0.1", p)

        # b talks to a's server, and to its own
        r, w = await loop.create_task(client(port), context=b.context)
        r2, w2 = await loop.create_task(client(port_b), context=b.context)
        w.write(b"ping")
        assert await r.readexactly(4) == b"ping"
        sleeper = loop.create_task(asyncio.sleep(3600), context=a.context)
        await asyncio.sleep(0)
        assert incarnation() is None  # the host's own code belongs to no node

        loop.kill(a)
        await asyncio.sleep(0.05)
        assert sleeper.cancelled()
        # a's end of the connection vanished without an answer; b's reader sees it end
        assert await asyncio.wait_for(r.read(), 5) == b""
        # a's listener is gone
        with pytest.raises(OSError):
            await loop.create_task(client(port), context=b.context)
        # b and its own server go on
        w2.write(b"pong")
        assert await r2.readexactly(4) == b"pong"
        # a dead incarnation starts nothing: a task made in its name never runs its body
        ran: list[int] = []

        async def body() -> None:
            ran.append(1)

        late = loop.create_task(body(), context=a.context)
        await asyncio.sleep(0)
        assert late.cancelled() and ran == []
        w2.close()
        server.close()

    run_on_node_loop(main)


def test_a_killed_nodes_serial_descriptor_is_let_go_without_reusing_its_number() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, NodeLoop)
        a = Incarnation("a")
        far, near = os.openpty()  # the node holds the slave end, as an agent holds a UART
        woke: list[int] = []

        def watch() -> None:
            loop.add_reader(near, lambda: woke.append(1))

        a.context.run(watch)
        loop.kill(a)
        # the pty's far end sees its last holder go (EIO on Linux), as when a process dies
        with pytest.raises(OSError):
            os.read(far, 10)
        os.close(near)  # the node's own close later closes /dev/null's duplicate, nothing else
        os.close(far)
        assert woke == []

    run_on_node_loop(main)


def test_hosted_agents_share_the_process_descriptors() -> None:
    nofile = FD_HEADROOM + 2 * HOSTED_AGENT_FDS + 5
    share = DescriptorShare(nofile=nofile)
    share.agents = 2
    share_descriptors(share)
    try:
        first, second = Resources(Limits(), None, nofile=nofile), Resources(Limits(), None, nofile=nofile)
    finally:
        share_descriptors(None)
    allowed = share.limit  # what is left past the headroom and each agent's own descriptors
    assert allowed == 5
    admitted = sum(first.admit("tcpcl", "x") for _ in range(allowed)) + sum(
        second.admit("tcpcl", "y") for _ in range(allowed)
    )
    assert admitted == allowed  # together, not each
    assert first.hits.get("connections", 0) + second.hits.get("connections", 0) == allowed
    first.leave()
    assert second.admit("tcpcl", "y") and share.connections == allowed
    assert first.status()["process_max_connections"] == allowed


def test_a_held_node_dials_only_once_it_runs() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = Incarnation("l")
        server, port = await _echo_server(listener)
        held = Incarnation("h")
        dial = loop.create_task(asyncio.open_connection("127.0.0.1", port), context=held.context)
        await asyncio.sleep(0.05)
        assert not dial.done()  # held: its links are down until the run starts
        held.running.set()
        _, writer = await asyncio.wait_for(dial, 5)
        writer.close()
        server.close()

    run_on_node_loop(main)
