"""One run's testbed: built, driven by the sequencer, recorded, torn down.

:class:`Session` builds the backend's testbed, opens one emulated link per
scenario link (gates closed), starts each node's stack through its driver
(:mod:`hilnet.stacks`: the node's ``stack:``, hilnet's agent by default) and
measures its clock, arms every node (all it can do before the start: hilnet's
agent is configured, held) and gives the emulator each link's whole script,
counted from a start not yet chosen. :meth:`Session.start` then tells the
emulator and every node the run's start ``t0``, picked only once all that is
done however long it took, and records ``run-start``. It is the :class:`~hilnet.controller.sequencer.Target`
the sequencer drives: it injects bundles, crashes and restarts nodes, and
says when the run is settled. It talks to nodes only through the seam
(:class:`~hilnet.stacks.base.StackDriver`).

Every event from agents, links and the controller lands in the
:class:`~hilnet.controller.eventlog.EventLog` with one time base, and every
record is folded into the run's :class:`~hilnet.ledger.Ledger` as it is
written: the settle test reads the same account the checks will.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hilnet.agent.protocol import Event, event_json
from hilnet.clock import Clock, MonotonicClock
from hilnet.controller.eventlog import EventLog
from hilnet.controller.payloads import Payload, bundle_tag, payloads_of
from hilnet.controller.schedule import emulator_schedule
from hilnet.controller.teardown import tear_down
from hilnet.errors import HilnetError, TestbedError
from hilnet.ledger import Ledger
from hilnet.scenario.actions import InjectBundle
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan
from hilnet.stacks.agent_host import HostedAgent, HostProcess, hosted_agents, raise_descriptor_limit
from hilnet.stacks.base import DRIVER_ERRORS, InjectRequest, NodeView, StackDriver
from hilnet.stacks.hilnet_agent import HilnetAgent
from hilnet.stacks.registry import delivery_eid, driver_for
from hilnet.testbed.hosting import place_agents
from hilnet.units import scenario_to_wall_ns

MIN_LIFETIME_NS = 1_000_000  # wall: a lifetime scaled below this would expire on the way out
# The link engine's loop runs SCHED_FIFO where the host allows it (root, or an RLIMIT_RTPRIO):
# measured on a 2-core host under a load of 10, its link changes were then within 0.25 ms
# of their time, against up to 6 ms without (the kernel ran it late, not Python).
ENGINE_PRIORITY = 10
MAX_AT_ONCE = 64  # nodes worked on at the same time: their stacks do the work, the threads only wait


def _engine_priority() -> int | None:
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= ENGINE_PRIORITY
    return ENGINE_PRIORITY if allowed else None


def in_parallel(work: Callable[[str], None], names: list[str]) -> None:
    """``work(name)`` for every name, many at once; raises the first error (by name order) once all are done."""
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_AT_ONCE, len(names))), thread_name_prefix="node") as pool:
        futures = [pool.submit(work, n) for n in names]
    for f in futures:
        error = f.exception()
        if error is not None:
            raise error


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
        agents: str = "auto",
    ):
        self.scenario = scenario
        self.bench = bench  # a hilnet.bench.model.Bench for the bench backend
        self.plan = plan
        self.payloads: dict[str, Payload] = {}  # by bundle name, made in build(): before t0
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
        self.stacks: dict[str, StackDriver] = {}  # node -> the driver of its stack
        self.agents_mode = agents  # auto | process | hosted (hilnet/testbed/hosting.py)
        self.hosts: list[HostProcess] = []
        self._hosted: dict[str, HostedAgent] = {}  # node -> its agent in a host process
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

    # The drivers' EventSink: events of every node's stack.

    def event(self, node: str, ev: Event) -> None:
        rec = event_json(ev)
        del rec["t_ns"]  # the agent's clock: kept as t_agent_ns, mapped onto ours with its offset
        rec["node"] = node
        self.log.write("agent", rec, ev.t_ns - self.offsets.get(node, 0), t_agent_ns=ev.t_ns)

    def unreadable(self, node: str, message: str) -> None:
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
        """Build the testbed, open the links (gates closed), start every node's stack and measure its clock."""
        if self.backend_name == "bench":
            from hilnet.testbed.bench import BenchTestbed

            self.testbed = BenchTestbed(self.scenario, self.run_dir, self.bench)
        elif self.backend_name == "netns":
            from hilnet.testbed.netns import NetnsTestbed

            self.testbed = NetnsTestbed(self.scenario, self.run_dir)
        else:
            from hilnet.testbed.loopback import LoopbackTestbed

            self.testbed = LoopbackTestbed(self.scenario, self.run_dir, hold_listen_ports=True)
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
                n: {
                    "command": list(rt.command),
                    "store": rt.store_path,
                    "on": rt.where or "virtual",
                    "stack": self.scenario.node(n).stack,
                }
                for n, rt in self.testbed.nodes.items()
            },
            links={n: [rt.a_spec, rt.b_spec] for n, rt in self.testbed.links.items()},
        )
        self._open_links()
        self._arm_links()
        self._place_agents()
        for name, rt in self.testbed.nodes.items():
            self.stacks[name] = self._driver(name, rt)
        # Every stack at once: each takes a while to come up (a Python agent, ionstart).
        in_parallel(self._start_node, list(self.stacks))
        self.payloads = payloads_of(self.scenario.seed, self.plan.actions)

    def _place_agents(self) -> None:
        """Host hilnet's agents many to a process where that is chosen (hilnet/testbed/hosting.py)."""
        ours = [n for n in self.testbed.nodes if self.scenario.node(n).stack == "hilnet"]
        placement = place_agents(self.backend_name, ours, self.agents_mode)
        self.note("agents", hosts={h: list(ns) for h, ns in placement.hosts.items()}, why=placement.why)
        if placement.hosted:
            raise_descriptor_limit()  # the engine holds four descriptors per link: many links, many descriptors
        held: Callable[[str], list[Any]] = getattr(self.testbed, "listen_sockets", lambda node: [])  # loopback.py
        log_dir = os.path.join(self.run_dir, "logs")
        self.hosts, self._hosted = hosted_agents(
            placement.hosts, log_dir, self.clock, self.event, self.unreadable, held
        )
        for host in self.hosts:
            host.ensure_started()  # it inherits its nodes' listen sockets now
        getattr(self.testbed, "release_listen_ports", lambda: None)()  # held against other runs until now

    def _driver(self, name: str, rt: Any) -> StackDriver:
        """The one place a node's driver is built: from the node's ``stack:``."""
        node = self.scenario.node(name)
        view = NodeView(name, node.eid, node.stack, rt, self.scenario, self.plan, self.run_dir)
        if name in self._hosted:
            return HilnetAgent(view, self.clock, self, process=self._hosted[name])
        return driver_for(node.stack)(view, self.clock, self)

    def _start_node(self, name: str) -> None:
        """Start node ``name``'s stack, measure its clock and arm it: all but the run's start."""
        self.stacks[name].start()
        self._measure_clock(name)
        self.stacks[name].arm()

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

    def _arm_links(self) -> None:
        """Each link's whole script in the engine, in run time: :meth:`start` sets when it runs from."""
        sc = self.scenario
        for link in sc.links:
            fwd, bwd = emulator_schedule(sc, link, 0)
            h = self.handles[link.name]
            h.arm("a->b", fwd)
            h.arm("b->a", bwd)

    def _measure_clock(self, name: str) -> None:
        off, unc = self.stacks[name].clock_offset()
        self.offsets[name] = off
        self.note("clock-offset", node=name, offset_ns=off, uncertainty_ns=unc)

    def configure(self, name: str) -> None:
        """Give node ``name``'s stack its links, store and contact plan from the run's ``t0``."""
        if self.t0 is None:
            raise TestbedError(f"node {name}: configured before the run's start was set")
        self.stacks[name].configure(self.t0)

    def start(self, t0: int) -> None:
        """Start the run at clock time ``t0`` (ahead of now, once :meth:`build` armed everything): the
        links' scripts and every node's contact plan run from it, each link's state at 0 is set at
        once. Records ``run-start``, and a warning when the nodes learned of it only after ``t0``."""
        sc = self.scenario
        self.t0 = t0
        self.log.set_t0(t0)
        self.engine.begin(t0)
        in_parallel(self.configure, list(self.stacks))
        late = self.clock.now_ns() - t0
        if late > 0:
            self.note("log", level="warning", message=f"the nodes learned of the start {late / 1e6:.1f} ms after it")
        self.note(
            "run-start",
            t0,
            name=sc.name,
            scenario=sc.source,
            scale=sc.clock.scale,
            compress=sc.clock.compress,
            duration_ns=sc.clock.duration_ns,
            seed=sc.seed,
            backend=self.backend_name,
            backend_reason=self.backend_why,
            nodes={n.name: n.eid for n in sc.nodes},
            # which node ran on real hardware and which virtually here (a mixed bench run)
            placement={n: rt.where or "virtual" for n, rt in self.testbed.nodes.items()},
            # what software played each node and what it can observe (the checks read it)
            stacks={n: {"stack": d.stack, **d.observes.as_record()} for n, d in self.stacks.items()},
            links=[{"name": ln.name, "a": ln.a, "b": ln.b, "medium": ln.medium} for ln in sc.links],
        )

    # -- what the sequencer asks for ------------------------------------------------------

    def inject(self, action: InjectBundle) -> None:
        """Ask the source node's stack for the bundle; its answer, when it comes, records ``inject``."""
        payload = self.payloads[bundle_tag(action)]  # every injection of the plan, made in build()
        tag, seed, sha256 = payload.tag, payload.seed, payload.sha256
        rec = {
            "tag": tag,
            "traffic": action.traffic,
            "index": action.seq + 1,
            "frm": action.frm,
            "to": action.to,
            "size": action.size,
            "sha256": sha256,
            "lifetime_ns": action.lifetime_ns,
            "priority": action.priority,  # the class of service, for the reports' per-class rows
            "ordinal": action.ordinal,
        }
        request = InjectRequest(
            action,
            tag,
            seed,
            sha256,
            delivery_eid(self.scenario.node(action.to).stack, self.scenario.node(action.to).eid),
            max(MIN_LIFETIME_NS, scenario_to_wall_ns(action.lifetime_ns, self.scenario.clock.scale)),
        )
        at = self.clock.now_ns()

        def injected(outcome: str | HilnetError) -> None:
            if isinstance(outcome, HilnetError):
                self.note("inject-failed", at, reason=str(outcome), **rec)
                # The scenario's traffic could not be put in (a full disk, a dead
                # agent): what follows would judge a different run.
                if not self._stopping.is_set() and not self.failure:
                    self.failure = f"injecting {tag}: {outcome}"
            else:
                self.note("inject", at, bundle=outcome, **rec)

        try:
            self.stacks[action.frm].inject(request, injected)
        except DRIVER_ERRORS as e:
            self.note("inject-failed", at, reason=str(e), **rec)

    def crash(self, node: str) -> None:
        self.stacks[node].crash()

    def restart(self, node: str) -> None:
        self._start_node(node)
        self.configure(node)

    def power_cut(self, node: str) -> None:
        """Switch off the board playing ``node`` (its stack dies with it, as a crash does)."""
        self.testbed.power_off(node)
        self.stacks[node].crash()  # the board is gone: what is left here is the SSH client

    def power_on(self, node: str) -> None:
        """Switch the board on, wait until it answers over SSH, and start its stack again on its store."""
        self.testbed.power_on(node)
        self.restart(node)

    def check_health(self) -> None:
        """Raise TestbedError when the log cannot be written, a node's stack died on its own, or a link broke."""
        if self.log.error is not None and not self.failure:
            self.failure = f"cannot write {self.log.path}: {self.log.error.strerror or self.log.error}"
        for driver in self.stacks.values():
            died = driver.check()
            if died is not None:
                self.failure = died
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
        return all(d.alive() for d in self.stacks.values())  # a crashed node waits for its restart

    # -- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Stop the nodes' stacks, links and the testbed; returns what could not be cleaned up. Never raises."""
        self._stopping.set()
        problems = tear_down(self.stacks, self.engine, self.handles, self.testbed, self.note)
        for host in self.hosts:  # each stops after its last node; this is for those whose nodes never started
            host.close()
        return problems
