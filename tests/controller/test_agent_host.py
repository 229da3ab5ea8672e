"""HostedAgent against a real ``hilnet agent --host``: one process, three nodes, one of them killed."""

from __future__ import annotations

import pytest

from hilnet.clock import MonotonicClock
from hilnet.stacks.agent_host import HostedAgent, HostProcess
from tests.agent.agent_procs import MS, Procs, free_port


class HostedProcs(Procs):
    """Procs whose agents are nodes of one host process."""

    def __init__(self, tmp_path, names: str):
        super().__init__(tmp_path)
        self.host = HostProcess("host-1", str(tmp_path / "logs" / "host-1.log"))
        for name in names:
            self.agents[name] = HostedAgent(name, self.host, MonotonicClock(), self._on_event, self._on_unreadable)

    def log_of(self, name: str) -> str:
        try:
            return (self.tmp / "logs" / "host-1.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@pytest.fixture
def procs(tmp_path):
    p = HostedProcs(tmp_path, "abc")
    yield p
    p.stop_all()
    p.host.close()


def _configure(procs: HostedProcs, pa: int, pb: int, pc: int) -> None:
    procs.configure("b", "ipn:2.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}"}])
    procs.configure("c", "ipn:3.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pc}"}])
    peers = {"ipn:2.0": f"127.0.0.1:{pb}", "ipn:3.0": f"127.0.0.1:{pc}"}
    procs.configure(
        "a",
        "ipn:1.0",
        [{"type": "tcpcl", "listen": f"127.0.0.1:{pa}", "peers": peers}],
        routes={"ipn:2.0": "ipn:2.0", "ipn:3.0": "ipn:3.0"},
    )


def test_a_crash_kills_one_hosted_node_and_its_restart_finds_its_store(procs) -> None:
    pa, pb, pc = free_port(), free_port(), free_port()
    for name in "abc":
        procs.start(name)
    assert procs.agents["a"].agent_pid == procs.agents["c"].agent_pid == procs.host.proc.pid  # one process
    _configure(procs, pa, pb, pc)
    sessions = lambda node, peer: [e for e in procs.of(node, "session-up") if e["peer"] == peer]  # noqa: E731
    procs.wait(lambda: sessions("a", "ipn:2.0") and sessions("a", "ipn:3.0"), 20, "a's sessions to b and c")
    # b keeps a bundle it has no route for: it must survive the kill in b's store
    kept = procs.call("b", {"cmd": "inject", "dest": "ipn:9.0", "size": 100, "seed": 1, "lifetime_ns": 600_000 * MS})
    assert procs.status("b")["stored"] == 1

    procs.agents["b"].kill()
    assert not procs.agents["b"].alive() and procs.host.alive()
    # b's connection vanished as a killed process's does: a sees it end uncleanly
    downs = lambda: [e for e in procs.of("a", "session-down") if e["peer"] == "ipn:2.0"]  # noqa: E731
    procs.wait(downs, 20, "a sees b's session go")
    assert downs()[0]["detail"]["clean"] is False
    # the other nodes go on: c answers, and a's session to c stays up
    assert procs.status("c")["eid"] == "ipn:3.0"
    assert [e for e in procs.of("a", "session-down") if e["peer"] == "ipn:3.0"] == []
    events_of_b = len(procs.events["b"])

    procs.start("b")
    reply = procs.configure("b", "ipn:2.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{pb}"}])
    assert reply["stored"] == 1  # the store opened again, with what was committed before the kill
    assert procs.status("b")["stored"] == 1
    assert all(e["event"] != "delivered" for e in procs.events["b"][:events_of_b])
    done = procs.call("a", {"cmd": "inject", "dest": "ipn:2.0", "size": 500, "seed": 2, "lifetime_ns": 600_000 * MS})
    procs.wait(lambda: any(e["bundle"] == done["bundle"] for e in procs.of("b", "delivered")), 30, "delivery at b")
    assert kept["bundle"] != done["bundle"]


def test_each_hosted_node_has_its_own_event_stream(procs) -> None:
    pa, pb, pc = free_port(), free_port(), free_port()
    for name in "abc":
        procs.start(name)
    _configure(procs, pa, pb, pc)
    done = procs.call("a", {"cmd": "inject", "dest": "ipn:3.0", "size": 64, "seed": 3, "lifetime_ns": 600_000 * MS})
    procs.wait(lambda: any(e["bundle"] == done["bundle"] for e in procs.of("c", "delivered")), 30, "delivery at c")
    for name in "abc":
        named = {e.get("node") for e in procs.events[name]}
        assert named <= {name, None}, f"{name} got events of {named - {name, None}}"
    assert procs.of("b", "delivered") == [] and procs.of("a", "delivered") == []
    assert [e["event"] for e in procs.events["a"]].count("ready") == 1


def test_a_node_stops_alone_and_the_host_after_its_last_node(procs) -> None:
    for name in "abc":
        procs.start(name)
    procs.agents["a"].stop()
    assert not procs.agents["a"].alive() and procs.host.alive()
    assert procs.call("b", {"cmd": "hello"})["pid"] == procs.host.proc.pid
    procs.agents["b"].stop()
    procs.agents["c"].stop()
    assert procs.host.proc.wait(10) == 0
