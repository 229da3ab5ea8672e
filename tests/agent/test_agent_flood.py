"""A real agent under a flood of idle connections keeps its descriptors for its own work.

The agent runs with systemd's default descriptor limit (1,024, set with
``prlimit``); 1,030 idle MTCP connections once used every descriptor, so the
agent could no longer reach its next hop and logged a traceback per try.
"""

from __future__ import annotations

import shutil
import socket

import pytest

from hilnet.agent.cla.limits import FD_HEADROOM
from hilnet.clock import MonotonicClock
from hilnet.stacks.agent_process import AgentProcess
from tests.agent.agent_procs import Procs, free_port

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit missing (Debian package util-linux)")


def test_1030_idle_mtcp_connections_leave_the_agent_able_to_forward(tmp_path):
    procs = Procs(tmp_path)
    flood: list[socket.socket] = []
    try:
        b = AgentProcess(
            "b", (), str(tmp_path / "logs" / "b.log"), MonotonicClock(), procs._on_event, procs._on_unreadable
        )
        b.argv = ["prlimit", "--nofile=1024:1024", "--", *b.argv]
        procs.agents["b"] = b
        procs.start("b")
        pm, pc = free_port(), free_port()
        procs.configure(
            "b",
            "ipn:2.0",
            [{"type": "mtcp", "listen": f"127.0.0.1:{pm}"}, {"type": "tcpcl", "peers": {"ipn:3.0": f"127.0.0.1:{pc}"}}],
            {"*": "ipn:3.0"},
        )
        for _ in range(1030):
            flood.append(socket.create_connection(("127.0.0.1", pm)))
        procs.wait(
            lambda: procs.status("b")["limits"]["connections"] == 1024 - FD_HEADROOM, 30, "b took its share of them"
        )
        # Only now does the next hop come up: b must open a new connection to reach it.
        procs.start("c")
        procs.configure("c", "ipn:3.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}])
        procs.call("b", {"cmd": "inject", "dest": "ipn:3.0", "size": 1000, "seed": 1})
        procs.wait(lambda: procs.of("c", "delivered"), 60, "the bundle reached c through b")
        limits = procs.status("b")["limits"]
        assert limits["max_connections"] == 1024 - FD_HEADROOM and limits["hits"]["connections"] >= 1030 - (
            1024 - FD_HEADROOM
        )
        assert [e["limit"] for e in procs.of("b", "limit")][:1] == ["connections"]
        assert len(procs.of("b", "limit")) < 10  # rate-limited: not one event per refused connection
        assert "Traceback" not in procs.log_of("b")
    finally:
        for s in flood:
            s.close()
        procs.stop_all()
