"""Every stack driver against the seam (hilnet/stacks/base.py): the same checks for each.

The static part runs for every stack in the registry whose driver this
hilnet has; the live part drives hilnet's own agent through a whole node life
(start, clock, arm, configure, inject, status, crash, restart, stop) as the
controller does, with a real agent process.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hilnet.agent.events import Event
from hilnet.agent.payload import payload_sha256
from hilnet.clock import MonotonicClock
from hilnet.errors import HilnetError, StackError
from hilnet.ledger import SIGHTING_EVENTS
from hilnet.scenario.actions import InjectBundle
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.stacks import registry
from hilnet.stacks.base import InjectRequest, NodeView
from hilnet.testbed.loopback import LoopbackTestbed

SEAM = ("start", "clock_offset", "arm", "configure", "inject", "status", "crash", "stop", "alive", "check")


def _factory(stack: str):
    try:
        return registry.driver_for(stack)
    except StackError as e:
        if "has no driver for it" in str(e):
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize("stack", sorted(registry.MODULES))
def test_each_driver_has_the_whole_seam_and_says_what_it_observes(stack: str) -> None:
    driver = _factory(stack)
    assert driver.stack == stack
    assert driver.backends and driver.backends <= {"loopback", "netns", "bench"}, driver.backends
    missing = [m for m in SEAM if not callable(getattr(driver, m, None))]
    assert not missing, f"the {stack} driver lacks {missing} (hilnet/stacks/base.py, StackDriver)"
    seen = driver.observes
    assert "delivered" in seen.events, "without deliveries no run can be judged"
    assert seen.events <= SIGHTING_EVENTS, seen.events - SIGHTING_EVENTS
    assert not seen.stored or seen.sees("stored"), "a stack that reports its store reports each stored bundle"


class _Sink:
    """The controller's side of the seam, kept: every event, and every line the driver could not read."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.bad_lines: list[str] = []
        self.changed = threading.Condition()

    def event(self, node: str, event: Event) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def unreadable(self, node: str, message: str) -> None:
        self.bad_lines.append(message)

    def wait_for(self, kind: str, count: int, timeout_s: float = 20.0) -> list[Event]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.of(kind)) >= count, timeout_s)
            return self.of(kind)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


SCENARIO = """hilnet: 1
name: one
clock: {scale: 1, duration: 1m}
nodes: {a: {eid: "ipn:1.0"}, b: {eid: "ipn:2.0"}}
links: {ab: {ends: [a, b], medium: ethernet}}
"""


def test_hilnets_driver_lives_a_whole_node_life(tmp_path: Path) -> None:
    scenario = load_scenario_text(SCENARIO, "one.yaml")
    testbed = LoopbackTestbed(scenario, str(tmp_path))
    testbed.build()
    clock = MonotonicClock()
    sink = _Sink()
    view = NodeView("a", "ipn:1.0", "hilnet", testbed.nodes["a"], scenario, compile_plan(scenario), str(tmp_path))
    driver = registry.driver_for("hilnet")(view, clock, sink)
    outcomes: list[str | HilnetError] = []
    try:
        driver.start()
        assert driver.alive() and driver.check() is None
        offset, uncertainty = driver.clock_offset()
        assert uncertainty >= 0
        driver.arm()
        driver.configure(clock.now_ns())
        action = InjectBundle(
            at_ns=0,
            wall_ns=0,
            subject="t",
            seq=0,
            frm="a",
            to="a",
            size=100,
            lifetime_ns=60 * 10**9,
            priority="expedited",
        )
        request = InjectRequest(action, "t#1", 7, payload_sha256(7, 100), "ipn:1.0", 60 * 10**9)
        driver.inject(request, outcomes.append)
        (delivered,) = sink.wait_for("delivered", 1)
        assert delivered.sha256 == payload_sha256(7, 100)
        assert [e.tag for e in sink.of("received")] == ["t#1"]  # the source names the controller's tag
        assert outcomes == [delivered.bundle]
        status = driver.status(5.0)
        assert status.stored_bundles == 0 and status.stored_bytes is not None

        driver.crash()
        assert not driver.alive()
        assert driver.check() is None, "a crash the controller asked for is not a failure"
        driver.start()  # on the same store
        driver.clock_offset()
        driver.arm()
        driver.configure(clock.now_ns())
        assert driver.alive() and driver.check() is None
    finally:
        driver.stop()
        testbed.teardown()
    assert not driver.alive()
    assert not sink.bad_lines
