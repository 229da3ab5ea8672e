"""hilnet's own agent as a node's stack: ``hilnet agent --stdio`` driven over its control channel.

The agent reports every bundle event (docs/control.md), its store's use and
its own clock, and keeps its store across a ``kill -9``: it observes
everything :class:`~hilnet.stacks.base.Observes` can name. The process side
(start, typed commands and replies, kill, stop) is
:class:`~hilnet.stacks.agent_process.AgentProcess`; this module maps the
seam's calls onto the agent's commands.
"""

from __future__ import annotations

import os
from typing import ClassVar

from hilnet.agent.protocol import Configure, Inject, Start, Status, StoreConfig
from hilnet.clock import Clock
from hilnet.errors import AgentError
from hilnet.ledger import OBSERVES_ALL, Observes
from hilnet.stacks.agent_process import AgentProcess, Outcome
from hilnet.stacks.base import EventSink, InjectRequest, NodeView, OnInjected, StackStatus

PRIORITY = {"bulk": 0, "normal": 1, "expedited": 2}  # the class of service on the control channel


class HilnetAgent:
    """The :class:`~hilnet.stacks.base.StackDriver` of a node with ``stack: hilnet``."""

    stack: ClassVar[str] = "hilnet"
    observes: ClassVar[Observes] = OBSERVES_ALL
    backends: ClassVar[frozenset[str]] = frozenset({"loopback", "netns", "bench"})

    def __init__(self, view: NodeView, clock: Clock, sink: EventSink, process: AgentProcess | None = None):
        """``process``: the agent's control channel when the backend made it (else a subprocess of its own)."""
        self.view = view
        rt = view.runtime
        self.log_path = os.path.join(view.run_dir, "logs", f"{view.name}.log")
        self.process = process or AgentProcess(
            view.name,
            (),
            self.log_path,
            clock,
            sink.event,
            sink.unreadable,
            command=rt.command,
            kill_command=rt.kill_command,
            where=rt.where,
        )
        self.offset_ns = 0  # the agent's clock minus ours, as last measured

    def start(self) -> None:
        self.process.start()
        self.process.wait_ready()

    def clock_offset(self) -> tuple[int, int]:
        off, unc = self.process.clock_offset()
        self.offset_ns = off
        return off, unc

    def arm(self) -> None:
        """Configure the agent *held* (docs/control.md, ``hold``): its store, CLAs and contact
        plan are ready, but its plan time starts only with :meth:`configure`'s ``start``."""
        v, rt = self.view, self.view.runtime
        command = Configure(
            node=v.name,
            eid=v.eid,
            store=StoreConfig(rt.store_path),  # the backend's path, as the agent opens it
            clas=tuple(rt.clas),
            contacts=v.plan.wall_contacts,
            nodes={n.name: n.eid for n in v.scenario.nodes},
            hold=True,
            scale=1.0,  # wall contacts: already divided by the scenario's scale
            keys=rt.keys_path,
        )
        self.process.call(command)

    def configure(self, t0_ns: int) -> None:
        # The agent's clock is ours plus its offset: its epoch is our t0 in its time.
        self.process.call(Start(epoch_ns=t0_ns + self.offset_ns))

    def inject(self, request: InjectRequest, on_done: OnInjected) -> None:
        a = request.action
        command = Inject(
            dest=request.dest_eid,
            size=a.size,
            seed=request.seed,
            lifetime_ns=request.lifetime_wall_ns,
            priority=PRIORITY.get(a.priority, 1),
            ordinal=a.ordinal,
            tag=request.tag,
            integrity=a.integrity,
            confidentiality=a.confidentiality,
            hop_limit=a.hop_limit,
        )

        def replied(outcome: Outcome) -> None:
            on_done(outcome if isinstance(outcome, AgentError) else str(outcome["bundle"]))

        self.process.send(command, on_reply=replied)

    def status(self, timeout_s: float) -> StackStatus:
        r = self.process.call(Status(), timeout_s=timeout_s)
        return StackStatus(r.get("stored"), r.get("bytes"), dict(r))

    def crash(self) -> None:
        self.process.exited_on_purpose = True  # also when it is gone already (its board was switched off)
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def alive(self) -> bool:
        return self.process.alive()

    def check(self) -> str | None:
        p = self.process
        p.expire_overdue()
        if not p.exited_on_purpose and p.proc is not None and not p.alive():
            return f"agent {self.view.name} {p.exit_cause()}; see {self.log_path}"
        return None


DRIVER = HilnetAgent
