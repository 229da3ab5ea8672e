"""The ION driver against a real ION: two nodes in network namespaces, a bundle across, a crash and a restart.

The netns testbed builds the namespaces and veth pairs; a Linux bridge joins
the two outer ends instead of hilnet's emulator (these tests are about the
driver; `hilnet run` of the ION scenarios exercises the whole path).
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time

import pytest

from hilnet.agent.events import Event
from hilnet.agent.payload import payload_for
from hilnet.clock import MonotonicClock
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.stacks.base import InjectRequest, NodeView
from hilnet.stacks.ion import IonDriver
from hilnet.testbed.netns import NetnsTestbed, netns_available
from tests.ion_support import ion_or_skip

pytestmark = [pytest.mark.netns, pytest.mark.slow]

SCENARIO = """
hilnet: 1
name: two-ion
clock: {scale: 1, duration: 10m}
nodes:
  a: {eid: ipn:1.0}
  b: {eid: ipn:2.0}
links:
  a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 1ms}
traffic:
  - {name: t, from: a, to: b, start: 1s, count: 2, every: 1s, size: 20KiB}
"""


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []
        self.unread: list[str] = []
        self.lock = threading.Lock()

    def event(self, node: str, event: Event) -> None:
        with self.lock:
            self.events.append((node, event))

    def unreadable(self, node: str, message: str) -> None:
        self.unread.append(message)

    def kinds(self, node: str, kind: str) -> list[Event]:
        with self.lock:
            return [e for n, e in self.events if n == node and e.kind == kind]


@pytest.fixture
def two_nodes(tmp_path):
    ion_or_skip()
    ok, why = netns_available()
    if not ok:
        pytest.skip(why)
    scenario = load_scenario_text(SCENARIO)
    plan = compile_plan(scenario)
    bed = NetnsTestbed(scenario, str(tmp_path))
    bed.build()
    bridge = f"hb{bed.rid}"
    drivers: dict[str, IonDriver] = {}
    try:
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        for ln in bed.links.values():
            for spec in (ln.a_spec, ln.b_spec):
                subprocess.run(["ip", "link", "set", spec.removeprefix("eth://"), "master", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        sink, clock = Sink(), MonotonicClock()
        for node in scenario.nodes:
            rt = bed.nodes[node.name]
            view = NodeView(node.name, node.eid, "ion", rt, scenario, plan, str(tmp_path))
            drivers[node.name] = IonDriver(view, clock, sink)
        yield scenario, plan, drivers, sink, clock
    finally:
        for d in drivers.values():
            d.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        assert bed.teardown() == []


def _request(scenario, plan, i: int, clock) -> InjectRequest:
    action = [a for a in plan.actions if a.kind == "inject"][i]
    seed = 1000 + i
    return InjectRequest(
        action,
        f"t#{i + 1}",
        seed,
        hashlib.sha256(payload_for(seed, action.size)).hexdigest(),
        IonDriver.delivery_eid(scenario.node(action.to).eid),
        60_000_000_000,
    )


def _wait(drivers, sink, until, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for d in drivers.values():
            assert d.check() is None
        if until():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; events: {[(n, e.kind) for n, e in sink.events]}")


def _inject(driver, request) -> str:
    got: list[object] = []
    driver.inject(request, got.append)  # returns at once: ION's bpsendfile runs on the node's worker
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(got) == 1 and isinstance(got[0], str), got
    return got[0]


def test_a_bundle_crosses_from_ion_to_ion_with_its_hash(two_nodes):
    scenario, plan, drivers, sink, clock = two_nodes
    for d in drivers.values():
        d.start()
    t0 = clock.now_ns()
    for d in drivers.values():
        d.configure(t0)
    # one SYN retry in the node's own network namespace (ION connects inside an SDR transaction)
    read = ["cat", "/proc/sys/net/ipv4/tcp_syn_retries"]
    p = subprocess.run(drivers["a"].ns.command(read, "/"), capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "1"
    req = _request(scenario, plan, 0, clock)
    key = _inject(drivers["a"], req)
    assert key.startswith("ipn:1.2/")  # sent from ION's application endpoint
    _wait(drivers, sink, lambda: sink.kinds("b", "delivered") and sink.kinds("a", "sent"))
    (delivered,) = sink.kinds("b", "delivered")
    assert (delivered.bundle, delivered.sha256, delivered.size) == (key, req.sha256, req.action.size)
    assert [e.bundle for e in sink.kinds("a", "stored")] == [key]  # injected: ION has it
    assert [e.bundle for e in sink.kinds("a", "forwarded")] == [key]  # handed to TCPCLv3
    assert [e.bundle for e in sink.kinds("a", "sent")] == [key]  # and gone from ION's store (bplist)
    assert key in [e.bundle for e in sink.kinds("b", "received")]
    status = drivers["b"].status(10)
    assert status.stored_bundles == 0
    # stopping one node leaves the other running (ION's ionstop would kill every ION on the host)
    drivers["a"].stop()
    assert not drivers["a"].alive() and drivers["a"].ns.pids() == []
    assert drivers["b"].alive() and len(drivers["b"].ns.pids()) > 3
    folder = drivers["a"].folder
    for name in ("ion.cfg", "node.ionrc", "node.bprc", "contacts.ionrc", "ion.log", "ion.sdr"):
        assert (pytest.importorskip("pathlib").Path(folder) / name).exists(), name


def test_a_bundle_ion_accepted_survives_a_crash(two_nodes):
    scenario, plan, drivers, sink, clock = two_nodes
    a, b = drivers["a"], drivers["b"]
    a.start()
    t0 = clock.now_ns()
    a.configure(t0)
    req = _request(scenario, plan, 1, clock)
    key = _inject(a, req)  # b is not running: the bundle waits at a
    _wait(drivers, sink, lambda: sink.kinds("a", "stored"))
    assert a.status(10).stored_bundles == 1
    a.crash()
    assert not a.alive() and a.ns.pids() == []
    a.start()  # again, on the SDR file it left
    a.configure(t0)
    b.start()
    b.configure(t0)
    _wait(drivers, sink, lambda: sink.kinds("b", "delivered"), timeout_s=60)
    (delivered,) = sink.kinds("b", "delivered")
    assert (delivered.bundle, delivered.sha256) == (key, req.sha256)
