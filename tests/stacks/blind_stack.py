"""A stack that observes less: hilnet's agent with all but ``received`` and ``delivered`` held back.

Its driver is the hilnet driver with a narrower sink, so runs with it are
real runs (real agents, real links); only what reaches the controller is
what an ION-like stack can tell. ``DRIVER`` plays node ``b`` this way and
every other node as hilnet's agent.
"""

from __future__ import annotations

from hilnet.agent.events import Event
from hilnet.clock import Clock
from hilnet.ledger import SIGHTING_EVENTS, Observes
from hilnet.stacks.base import EventSink, NodeView, StackDriver, StackStatus
from hilnet.stacks.hilnet_agent import HilnetAgent

BLIND_NODE = "b"


class _Narrow:
    """An EventSink that passes on only the bundle events ``observes`` names (and every non-bundle event)."""

    def __init__(self, sink: EventSink, observes: Observes):
        self.sink, self.observes = sink, observes

    def event(self, node: str, event: Event) -> None:
        if event.kind not in SIGHTING_EVENTS or self.observes.sees(event.kind):
            self.sink.event(node, event)

    def unreadable(self, node: str, message: str) -> None:
        self.sink.unreadable(node, message)


class BlindAgent(HilnetAgent):
    stack = "blind"
    observes = Observes(
        frozenset({"received", "delivered"}), stored=False, crash=True, note="reports deliveries and arrivals only"
    )

    def __init__(self, view: NodeView, clock: Clock, sink: EventSink):
        super().__init__(view, clock, _Narrow(sink, self.observes))

    def status(self, timeout_s: float) -> StackStatus:
        super().status(timeout_s)  # it answers, but says nothing of its store
        return StackStatus(None, None)


class _PerNode:
    """The registry's entry: node ``b`` gets the blind driver, every other node hilnet's."""

    stack = HilnetAgent.stack
    observes = HilnetAgent.observes
    backends = HilnetAgent.backends

    def __call__(self, view: NodeView, clock: Clock, sink: EventSink) -> StackDriver:
        return (BlindAgent if view.name == BLIND_NODE else HilnetAgent)(view, clock, sink)


DRIVER = _PerNode()
