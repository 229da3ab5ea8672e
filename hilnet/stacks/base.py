"""The seam between the controller and whatever DTN software plays a node.

A *stack driver* runs one node's stack (hilnet's agent, NASA's ION, later
µD3TN, HDTN or dtn7) and is all the controller knows of it. One driver
object lives for the whole run of its node; its life is::

    d = Driver(view, clock, sink)   # nothing runs yet
    d.start()                       # the stack is up
    d.clock_offset()                # (offset, uncertainty) of its event clock
    d.arm()                         # all that can be done before the run's start is known (may be slow)
    d.configure(t0_ns)              # the contact plan from the run's start t0 (quick: t0 is near)
    d.inject(request, on_done)      # ... any number, from t0 on
    d.crash(); d.start(); d.clock_offset(); d.arm(); d.configure(t0_ns)   # a crash fault and the restart
    d.status(timeout_s)             # what it still stores, at the end
    d.stop()                        # never hangs

The controller runs each step for every node at once, and picks ``t0`` only
when every node is armed: whatever takes long belongs in :meth:`start` or
:meth:`arm`, so that :meth:`configure` is done before ``t0`` comes.

The driver reports what happens through ``sink`` as typed events
(:mod:`hilnet.agent.events`: received, stored, forwarded, acked, delivered
with the payload's SHA-256, expired...), each stamped with the driver's own
clock (``t_ns``); :meth:`StackDriver.clock_offset` says how that clock relates
to the controller's. A stack cannot always tell everything hilnet's agent
tells: its :class:`~hilnet.ledger.Observes` (a class attribute, the same for every node of
that stack) says which event kinds it reports, whether it can say what it
still stores and whether it survives a crash on its persistent state. The
run records it, and the checks say "not observable for this stack" where a
missing event would otherwise read as a loss (docs/stacks.md).

Drivers raise :class:`~hilnet.errors.StackError` (hilnet's own agent:
:class:`~hilnet.errors.AgentError`); :data:`DRIVER_ERRORS` is both. Drivers
are found by stack name in :mod:`hilnet.stacks.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from hilnet.agent.events import Event
from hilnet.clock import Clock
from hilnet.errors import AgentError, HilnetError, StackError
from hilnet.ledger import Observes  # what a stack can tell: pure, so the checks and reports read it too
from hilnet.scenario.actions import InjectBundle
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.testbed.base import NodeRuntime

DRIVER_ERRORS = (AgentError, StackError)


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node's view of the run: what its driver configures the stack from.

    ``runtime`` is the backend's facts for the node (where it runs, its CLA
    settings and addresses, its store path, its key file); ``scenario`` and
    ``plan`` the whole run (the contact plan is ``plan.wall_contacts``, in
    wall time from ``t0``). ``run_dir`` is the run folder: a driver keeps its
    logs and generated files under ``run_dir/logs`` and ``run_dir/stacks/NODE``.
    """

    name: str
    eid: str
    stack: str
    runtime: NodeRuntime
    scenario: Scenario
    plan: Plan
    run_dir: str


@dataclass(frozen=True, slots=True)
class InjectRequest:
    """One bundle to put in at the node, as a local application would.

    The payload is :func:`hilnet.agent.payload.payload_for` ``(seed, action.size)``
    (its SHA-256 is ``sha256``); ``tag`` is the controller's name for it
    ("photos#3"). ``lifetime_wall_ns`` is ``action.lifetime_ns`` in wall time;
    the class of service is ``action.priority`` and ``action.ordinal``.
    """

    action: InjectBundle
    tag: str
    seed: int
    sha256: str
    dest_eid: str
    lifetime_wall_ns: int


@dataclass(frozen=True, slots=True)
class StackStatus:
    """What a stack said about itself: store use (None: it cannot tell) and its own words."""

    stored_bundles: int | None
    stored_bytes: int | None
    detail: Mapping[str, Any] = field(default_factory=dict)


# The injection's outcome: the bundle id the stack gave it, or why there is none.
OnInjected = Callable[[str | HilnetError], None]


class EventSink(Protocol):
    """Where a driver's reports go (called from any of the driver's threads)."""

    def event(self, node: str, event: Event) -> None:
        """An event of ``node``'s stack; ``event.t_ns`` on the driver's clock."""
        ...

    def unreadable(self, node: str, message: str) -> None:
        """Something the stack said that the driver could not read (kept as an error in the log)."""
        ...


class StackDriver(Protocol):
    """One node's stack, as the controller drives it (see the module docstring)."""

    stack: ClassVar[str]  # the scenario's ``stack:`` name
    observes: ClassVar[Observes]
    backends: ClassVar[frozenset[str]]  # where it can run a node: loopback, netns, bench
    log_path: str  # the stack's own log, named in errors

    def start(self) -> None:
        """Start the stack (again after :meth:`crash`, on the same persistent state); returns when it is up."""
        ...

    def clock_offset(self) -> tuple[int, int]:
        """(offset, uncertainty) ns: the driver's event clock minus the controller's, at the same instant."""
        ...

    def arm(self) -> None:
        """Make the stack ready to run the node (links, store, plan) but for the start instant; may be slow."""
        ...

    def configure(self, t0_ns: int) -> None:
        """The run's scenario time 0 is ``t0_ns`` (controller clock): the contact plan runs from it. Quick."""
        ...

    def inject(self, request: InjectRequest, on_done: OnInjected) -> None:
        """Put a bundle in now; ``on_done`` gets its id (or the error) later, from any thread.

        Raises at once only when it cannot even be asked for (the stack is down).
        """
        ...

    def status(self, timeout_s: float) -> StackStatus:
        """What the stack holds now; raises when it does not answer within ``timeout_s``."""
        ...

    def crash(self) -> None:
        """``kill -9``: nothing gets to close. Counts as on purpose (not a failure)."""
        ...

    def stop(self) -> None:
        """Stop gracefully, then by force; never hangs (what it raises, the teardown records)."""
        ...

    def alive(self) -> bool: ...

    def check(self) -> str | None:
        """Called every few tens of ms: do periodic work; return why the stack ended on its own, else None."""
        ...


class DriverFactory(Protocol):
    """What builds a node's driver: the registry's entries are these (the driver class itself, usually)."""

    stack: str
    observes: Observes
    backends: frozenset[str]

    def __call__(self, view: NodeView, clock: Clock, sink: EventSink) -> StackDriver: ...
