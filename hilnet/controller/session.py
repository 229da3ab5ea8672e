"""One run's testbed: built, driven by the sequencer, recorded, torn down.

:class:`Session` builds the backend's testbed, opens one emulated link per
scenario link (gates closed), starts one agent per node and measures its
clock; :meth:`Session.arm` gives the emulator each link's whole script and
configures every agent, held; :meth:`Session.start` then tells both the run's
start ``t0``, chosen only once all that is done, and records ``run-start``. It is the :class:`~hilnet.controller.sequencer.Target` the
sequencer drives: it injects bundles, crashes and restarts agents, and says
when the run is settled.

Every event from agents, links and the controller lands in the
:class:`~hilnet.controller.eventlog.EventLog` with one time base, and every
record is folded into the run's :class:`~hilnet.ledger.Ledger` as it is
written: the settle test reads the same account the checks will.
"""

from __future__ import annotations

import hashlib
import os
import resource
import threading
from collections.abc import Callable
from typing import Any

from hilnet.agent.payload import payload_sha256
from hilnet.agent.protocol import Command, Configure, Event, Inject, Start, StoreConfig, event_json
from hilnet.clock import Clock, MonotonicClock
from hilnet.controller.agents import AgentProcess, Outcome
from hilnet.controller.eventlog import EventLog
from hilnet.controller.schedule import emulator_schedule
from hilnet.controller.teardown import tear_down
from hilnet.errors import AgentError, HilnetError, TestbedError
from hilnet.ledger import Ledger
from hilnet.scenario.actions import InjectBundle
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.units import scenario_to_wall_ns

PRIORITY = {"bulk": 0, "normal": 1, "expedited": 2}  # the traffic's priority on the control channel
# The link engine's loop runs SCHED_FIFO where the host allows it (root, or an RLIMIT_RTPRIO):
# measured on a 2-core host under a load of 10, its link changes were then within 0.25 ms
# of their time, against up to 6 ms without (the kernel ran it late, not Python).
ENGINE_PRIORITY = 10


def _engine_priority() -> int | None:
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= ENGINE_PRIORITY
    return ENGINE_PRIORITY if allowed else None


class Session:
    """The testbed of one run and everything that happens on it."""

    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        run_dir: str,
        backend: str,
        backend_why: str,
        *,
        pcap: bool = False,
        progress: Callable[[dict], None] | None = None,
        clock: Clock | None = None,
        bench: Any = None,
    ):
        self.scenario = scenario
        self.bench = bench  # a hilnet.bench.model.Bench for the bench backend
        self.plan = plan
        self.run_dir = run_dir
        self.backend_name = backend
        self.backend_why = backend_why
        self.pcap = pcap
        self.progress = progress
        self.clock = clock or MonotonicClock()
        self.ledger = Ledger()
        self._ledger_lock = threading.Lock()  # records come from agent, engine and controller threads
        self.log = EventLog(os.path.join(run_dir, "events.jsonl"), scenario.clock.scale, self.clock, self._on_record)
        self.testbed: Any = None
        self.engine: Any = None
        self.handles: dict[str, Any] = {}
        self.agents: dict[str, AgentProcess] = {}
        self.offsets: dict[str, int] = {}
        self.t0: int | None = None
        self.failure: str | None = None  # why the testbed broke mid-run
        self._stopping = threading.Event()

    # -- records ------------------------------------------------------------------------

    def _on_record(self, record: dict) -> None:
        with self._ledger_lock:
            self.ledger.fold(record)
        if self.progress is not None:
            try:
                self.progress(record)
            except Exception:  # a broken progress view must not break the run
                self.progress = None

    def note(self, kind: str, wall_abs: int | None = None, **fields: object) -> None:
        """Record a controller event at clock time ``wall_abs`` (None: now)."""
        self.log.write("controller", {"event": kind, **fields}, self.clock.now_ns() if wall_abs is None else wall_abs)

    def _agent_event(self, node: str, ev: Event) -> None:
        rec = event_json(ev)
        del rec["t_ns"]  # the agent's clock: kept as t_agent_ns, mapped onto ours with its offset
        rec["node"] = node
        self.log.write("agent", rec, ev.t_ns - self.offsets.get(node, 0), t_agent_ns=ev.t_ns)

    def _agent_unreadable(self, node: str, message: str) -> None:
        rec = {"event": "log", "level": "error", "message": message, "node": node}
        self.log.write("agent", rec, self.clock.now_ns(), t_agent_ns=None)

    def _link_event(self, ev: dict) -> None:
        rec = dict(ev)
        kind = rec.get("event")
        t0 = self.t0 or 0
        if kind in ("up", "down", "change") and "at_ns" in rec:
            intended, applied = rec.pop("at_ns"), rec.pop("applied_ns", None)
            rec["intended_wall_ns"] = intended - t0
            rec["applied_wall_ns"] = (applied if applied is not None else intended) - t0
            wall_abs = applied if applied is not None else intended
        else:
            wall_abs = rec.pop("t_ns", None) or rec.pop("at_ns", None) or self.clock.now_ns()
        if kind in ("endpoint-error", "link-stopped") and not self._stopping.is_set():
            self.failure = f"link {rec.get('link')}: {rec.get('detail') or rec.get('error') or kind}"
        self.log.write("link", rec, wall_abs)

    # -- build --------------------------------------------------------------------------

    def build(self) -> None:
        """Build the testbed, open the links (gates closed), start the agents and measure their clocks."""
        if self.backend_name == "bench":
            from hilnet.testbed.bench import BenchTestbed

            self.testbed = BenchTestbed(self.scenario, self.run_dir, self.bench)
        elif self.backend_name == "netns":
            from hilnet.testbed.netns import NetnsTestbed

            self.testbed = NetnsTestbed(self.scenario, self.run_dir)
        else:
            from hilnet.testbed.loopback import LoopbackTestbed

            self.testbed = LoopbackTestbed(self.scenario, self.run_dir)
        self.testbed.build()
        removed = getattr(self.testbed, "leftovers_removed", [])
        if removed:
            self.note("log", level="warning", message=f"removed leftovers of a crashed run: {removed}")
        # What was built, by name: a person (or a test) can then tell whether a
        # namespace, veth or pty left on the machine belongs to this run.
        for warning in getattr(self.testbed, "warnings", []):
            self.note("log", level="warning", message=warning)
        self.note(
            "testbed",
            backend=self.backend_name,
            nodes={
                n: {"command": list(rt.command), "store": rt.store_path, "on": rt.where or "virtual"}
                for n, rt in self.testbed.nodes.items()
            },
            links={n: [rt.a_spec, rt.b_spec] for n, rt in self.testbed.links.items()},
        )
        self._open_links()
        for name, node in self.testbed.nodes.items():
            log_path = os.path.join(self.run_dir, "logs", f"{name}.log")
            proc = AgentProcess(
                name,
                (),
                log_path,
                self.clock,
                self._agent_event,
                self._agent_unreadable,
                command=node.command,
                kill_command=node.kill_command,
                where=node.where,
            )
            self.agents[name] = proc
            proc.start()
        for name, proc in self.agents.items():
            proc.wait_ready()
            self._measure_clock(name)

    def _open_links(self) -> None:
        from hilnet.link.engine import Engine
        from hilnet.link.params import direction_config_from_params

        self.engine = Engine(self.clock, on_event=self._link_event, realtime_priority=_engine_priority())
        pcap_dir = os.path.join(self.run_dir, "pcap") if self.pcap else None
        if pcap_dir:
            os.makedirs(pcap_dir, exist_ok=True)
        for i, link in enumerate(self.scenario.links):
            rt = self.testbed.links[link.name]
            try:
                self.handles[link.name] = self.engine.add_link(
                    link.name,
                    rt.a_spec,
                    rt.b_spec,
                    ab=direction_config_from_params(link.forward, up=False),
                    ba=direction_config_from_params(link.backward, up=False),
                    seed=(self.scenario.seed * 1000003 + i) & 0x7FFFFFFF,
                    capture_dir=pcap_dir,
                )
            except HilnetError as e:
                raise TestbedError(f"link {link.name}: {e}") from None
        self.engine.start()

    def _measure_clock(self, name: str) -> None:
        off, unc = self.agents[name].clock_offset()
        self.offsets[name] = off
        self.note("clock-offset", node=name, offset_ns=off, uncertainty_ns=unc)

    def _configure_command(self, name: str, hold: bool) -> Configure:
        """Agent ``name``'s node, CLAs, store and contact plan; from the run's ``t0``, or ``hold``: from its start."""
        if self.t0 is None and not hold:
            raise TestbedError(f"agent {name}: configured before the run's start was set")
        node = self.testbed.nodes[name]
        return Configure(
            node=name,
            eid=node.eid,
            store=StoreConfig(node.store_path),  # the backend's path, as the agent opens it
            clas=tuple(node.clas),
            contacts=self.plan.wall_contacts,
            nodes={n.name: n.eid for n in self.scenario.nodes},
            # The agent's clock is ours plus its offset: its epoch is our t0 in its time.
            epoch_ns=0 if hold else (self.t0 or 0) + self.offsets.get(name, 0),
            hold=hold,
            scale=1.0,  # wall contacts: already divided by the scenario's scale
            keys=node.keys_path,
        )

    def configure(self, name: str) -> None:
        """Configure agent ``name`` from the run's ``t0`` (an agent restarted mid-run)."""
        self.agents[name].call(self._configure_command(name, hold=False))

    def arm(self) -> None:
        """All that comes before the start, however long it takes: every link's whole script in
        the engine (in run time) and every agent configured, held until :meth:`start` says when."""
        sc = self.scenario
        for link in sc.links:
            fwd, bwd = emulator_schedule(sc, link, 0)
            h = self.handles[link.name]
            h.arm("a->b", fwd)
            h.arm("b->a", bwd)
        self._call_all(lambda name: self._configure_command(name, hold=True))

    def _call_all(self, command: Callable[[str], Command]) -> None:
        """Send every agent its ``command(name)`` at once, then wait for every reply."""
        sent = {name: proc.send(command(name)) for name, proc in self.agents.items()}
        for name, cid in sent.items():
            self.agents[name].wait_reply(cid)

    def start(self, t0: int) -> None:
        """Start the run at clock time ``t0`` (ahead of now; after :meth:`arm`): the links' scripts
        and the agents' plan time run from it. Records ``run-start``, and a warning when an agent
        learned of the start only after ``t0``."""
        sc = self.scenario
        self.t0 = t0
        self.log.set_t0(t0)
        self.engine.begin(t0)
        self._call_all(lambda name: Start(epoch_ns=t0 + self.offsets.get(name, 0)))
        late = self.clock.now_ns() - t0
        if late > 0:
            self.note("log", level="warning", message=f"the agents learned of the start {late / 1e6:.1f} ms after it")
        self.note(
            "run-start",
            t0,
            name=sc.name,
            scenario=sc.source,
            scale=sc.clock.scale,
            duration_ns=sc.clock.duration_ns,
            seed=sc.seed,
            backend=self.backend_name,
            backend_reason=self.backend_why,
            nodes={n.name: n.eid for n in sc.nodes},
            # which node ran on real hardware and which virtually here (a mixed bench run)
            placement={n: rt.where or "virtual" for n, rt in self.testbed.nodes.items()},
            links=[{"name": ln.name, "a": ln.a, "b": ln.b, "medium": ln.medium} for ln in sc.links],
        )

    # -- what the sequencer asks for ------------------------------------------------------

    def inject(self, action: InjectBundle) -> None:
        """Ask the source agent for the bundle; its reply, when it comes, records ``inject``."""
        tag = f"{action.traffic}#{action.seq + 1}"
        seed = int.from_bytes(hashlib.sha256(f"{self.scenario.seed}:{tag}".encode()).digest()[:6], "big")
        rec = {
            "tag": tag,
            "traffic": action.traffic,
            "index": action.seq + 1,
            "frm": action.frm,
            "to": action.to,
            "size": action.size,
            "sha256": payload_sha256(seed, action.size),
            "lifetime_ns": action.lifetime_ns,
            "priority": action.priority,  # the class of service, for the reports' per-class rows
            "ordinal": action.ordinal,
        }
        command = Inject(
            dest=self.scenario.node(action.to).eid,
            size=action.size,
            seed=seed,
            lifetime_ns=max(1_000_000, scenario_to_wall_ns(action.lifetime_ns, self.scenario.clock.scale)),
            priority=PRIORITY.get(action.priority, 1),
            ordinal=action.ordinal,
            tag=tag,
            integrity=action.integrity,
            confidentiality=action.confidentiality,
            hop_limit=action.hop_limit,
        )
        at = self.clock.now_ns()

        def injected(outcome: Outcome) -> None:
            if isinstance(outcome, AgentError):
                self.note("inject-failed", at, reason=str(outcome), **rec)
                # The scenario's traffic could not be put in (a full disk, a dead
                # agent): what follows would judge a different run.
                if not self._stopping.is_set() and not self.failure:
                    self.failure = f"injecting {tag}: {outcome}"
            else:
                self.note("inject", at, bundle=outcome["bundle"], **rec)

        try:
            self.agents[action.frm].send(command, on_reply=injected)
        except AgentError as e:
            self.note("inject-failed", at, reason=str(e), **rec)

    def crash(self, node: str) -> None:
        self.agents[node].kill()

    def restart(self, node: str) -> None:
        proc = self.agents[node]
        proc.start()
        proc.wait_ready()
        self._measure_clock(node)
        self.configure(node)

    def power_cut(self, node: str) -> None:
        """Switch off the board playing ``node`` (its agent dies with it, as a crash does)."""
        proc = self.agents[node]
        proc.exited_on_purpose = True
        self.testbed.power_off(node)
        proc.kill()  # the board is gone: what is left here is the SSH client

    def power_on(self, node: str) -> None:
        """Switch the board on, wait until it answers over SSH, and start its agent again on its store."""
        self.testbed.power_on(node)
        self.restart(node)

    def check_health(self) -> None:
        """Raise TestbedError when the log cannot be written, an agent died on its own, or a link broke."""
        if self.log.error is not None and not self.failure:
            self.failure = f"cannot write {self.log.path}: {self.log.error.strerror or self.log.error}"
        for proc in self.agents.values():
            proc.expire_overdue()
        for name, proc in self.agents.items():
            if not proc.exited_on_purpose and proc.proc is not None and not proc.alive():
                self.failure = f"agent {name} {proc.exit_cause()}; see {proc.log_path}"
        # A link event the controller could not take (its log or live view
        # raised) stops the engine: the run cannot be judged without it.
        link_failure = self.engine.failure if self.engine is not None else None
        if link_failure is not None and not self.failure:
            self.failure = str(link_failure)
        if self.failure:
            raise TestbedError(self.failure)

    def settled(self) -> bool:
        with self._ledger_lock:
            if not self.ledger.settled(self.scenario.bundles_total()):
                return False
        return all(p.alive() for p in self.agents.values())  # a crashed agent waits for its restart

    # -- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Stop agents, links and the testbed; returns what could not be cleaned up. Never raises."""
        self._stopping.set()
        return tear_down(self.agents, self.engine, self.handles, self.testbed, self.note, self.clock)
