"""``hilnet run``: build the testbed, replay the scenario, gather events, judge.

Sequence: load and compile (bad input exits 2 before any process starts) ->
build the backend -> open one emulated link per scenario link, gates closed ->
start the agents and estimate their clocks -> pick the run's start ``t0`` a
moment ahead and configure every agent with it -> give the emulator each
link's full script (windows, changes, cuts, bursts) in engine-clock time ->
replay traffic and agent faults on the scaled clock -> stop at the scenario's
duration, or once every bundle is settled -> tear everything down (also on
Ctrl-C and errors) -> checks -> reports.

Every event from agents, links and the controller lands in ``events.jsonl``
with one time base (docs/run.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hilnet.agent.payload import payload_sha256
from hilnet.clock import MonotonicClock
from hilnet.controller.agents import AgentProcess
from hilnet.controller.checks import CheckReport, check_run
from hilnet.controller.eventlog import EventLog
from hilnet.controller.schedule import emulator_schedule
from hilnet.errors import AgentError, HilnetError, InputError, LinkError, TestbedError
from hilnet.scenario.load import load_scenario
from hilnet.scenario.model import Scenario
from hilnet.scenario.plan import Plan, compile_plan
from hilnet.units import scenario_to_wall_ns

START_MARGIN_NS = 300_000_000  # t0 this far after the agents are configured
SETTLE_POLL_S = 0.05


@dataclass(frozen=True)
class RunOptions:
    backend: str | None = None  # loopback | netns | None (choose)
    out_dir: str | None = None
    scale: float | None = None
    seed: int | None = None
    pcap: bool = False
    until_settled: bool = True
    quiet: bool = False
    junit: str | None = None
    console: Any = None  # a writable text stream for progress (default: stderr)


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # 0 pass, 1 an expectation failed, 2 bad input / broken testbed
    run_dir: str
    report: CheckReport | None
    reason: str


def choose_backend(requested: str | None) -> tuple[str, str]:
    """(backend, why) — netns when root on Linux and allowed, else loopback."""
    from hilnet.testbed.netns import netns_available

    if requested == "loopback":
        return "loopback", "asked for with --backend"
    if requested == "netns":
        ok, why = netns_available()
        if not ok:
            raise TestbedError(f"--backend netns: {why}")
        return "netns", "asked for with --backend"
    if requested not in (None, "auto"):
        raise InputError(f"unknown backend {requested!r}; expected loopback or netns (bench comes later)")
    ok, why = netns_available()
    if ok:
        return "netns", why
    return "loopback", f"netns unavailable ({why})"


def prepare(path: str, options: RunOptions) -> tuple[Scenario, Plan]:
    scenario = load_scenario(path)
    if options.scale is not None:
        if not options.scale > 0:
            raise InputError(f"--scale must be above 0, got {options.scale}")
        scenario = dataclasses.replace(scenario, clock=dataclasses.replace(scenario.clock, scale=options.scale))
    if options.seed is not None:
        scenario = dataclasses.replace(scenario, seed=options.seed)
    return scenario, compile_plan(scenario)


def make_run_dir(scenario: Scenario, out_dir: str | None) -> str:
    if out_dir:
        run_dir = out_dir
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join("runs", f"{stamp}-{scenario.name}")
        n = 1
        while os.path.exists(run_dir):
            n += 1
            run_dir = os.path.join("runs", f"{stamp}-{scenario.name}-{n}")
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


class Replay:
    """One run in progress. ``execute()`` does it all and always tears down."""

    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        run_dir: str,
        options: RunOptions,
        backend: str,
        backend_why: str,
        progress: Callable[[dict], None] | None = None,
    ):
        self.scenario = scenario
        self.plan = plan
        self.run_dir = run_dir
        self.options = options
        self.backend_name = backend
        self.backend_why = backend_why
        self.clock = MonotonicClock()
        self.log = EventLog(os.path.join(run_dir, "events.jsonl"), scenario.clock.scale, self.clock, on_record=progress)
        self.testbed = None
        self.engine = None
        self.handles: dict[str, Any] = {}
        self.agents: dict[str, AgentProcess] = {}
        self.offsets: dict[str, int] = {}
        self.t0: int | None = None
        self.injected: dict[str, dict] = {}  # tag -> inject record
        self.key_to_tag: dict[str, str] = {}
        self.settled_keys: set[str] = set()  # delivered or expired
        self.holders: dict[str, set[str]] = {}  # bundle key -> nodes storing it
        self.failure: str | None = None  # why the testbed broke mid-run
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- events -------------------------------------------------------------------------

    def _agent_event(self, node: str, ev: dict) -> None:
        t_agent = ev.get("t_ns")
        off = self.offsets.get(node, 0)
        wall_abs = (t_agent - off) if isinstance(t_agent, int) else self.clock.now_ns()
        rec = {k: v for k, v in ev.items() if k != "t_ns"}
        rec["node"] = node
        self.log.write("agent", rec, wall_abs, t_agent_ns=t_agent)
        kind, key = ev.get("event"), ev.get("bundle")
        if key:
            with self._lock:
                if kind in ("delivered", "expired"):
                    self.settled_keys.add(key)
                if kind == "stored":
                    self.holders.setdefault(key, set()).add(node)
                elif kind in ("acked", "delivered", "expired", "deleted"):
                    self.holders.get(key, set()).discard(node)

    def _link_event(self, ev: dict) -> None:
        rec = dict(ev)
        kind = rec.get("event")
        if kind in ("up", "down", "change") and "at_ns" in rec:
            intended, applied = rec.pop("at_ns"), rec.pop("applied_ns", None)
            rec["intended_wall_ns"] = intended - (self.t0 or 0)
            rec["applied_wall_ns"] = (applied if applied is not None else intended) - (self.t0 or 0)
            wall_abs = applied if applied is not None else intended
        else:
            wall_abs = rec.pop("t_ns", None) or rec.pop("at_ns", None) or self.clock.now_ns()
        if kind == "endpoint-error" or kind == "link-stopped":
            if not self._stop.is_set():
                self.failure = f"link {rec.get('link')}: {rec.get('detail') or rec.get('error') or kind}"
        self.log.write("link", rec, wall_abs)

    def controller(self, kind: str, wall_abs: int | None = None, **fields: Any) -> None:
        self.log.write("controller", {"event": kind, **fields}, self.clock.now_ns() if wall_abs is None else wall_abs)

    # -- build --------------------------------------------------------------------------

    def build(self) -> None:
        if self.backend_name == "netns":
            from hilnet.testbed.netns import NetnsTestbed

            self.testbed = NetnsTestbed(self.scenario, self.run_dir)
        else:
            from hilnet.testbed.loopback import LoopbackTestbed

            self.testbed = LoopbackTestbed(self.scenario, self.run_dir)
        self.testbed.build()
        removed = getattr(self.testbed, "leftovers_removed", [])
        if removed:
            self.controller("log", level="warning", message=f"removed leftovers of a crashed run: {removed}")
        # What was built, by name: a person (or a test) can then tell whether a
        # namespace, veth or pty left on the machine belongs to this run.
        self.controller(
            "testbed",
            backend=self.backend_name,
            nodes={
                n: {"argv_prefix": list(rt.argv_prefix), "store": rt.store_path} for n, rt in self.testbed.nodes.items()
            },
            links={n: [rt.a_spec, rt.b_spec] for n, rt in self.testbed.links.items()},
        )

        from hilnet.link.engine import Engine
        from hilnet.link.params import direction_config_from_params

        self.engine = Engine(self.clock, on_event=self._link_event)
        pcap_dir = os.path.join(self.run_dir, "pcap") if self.options.pcap else None
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

        for name, node in self.testbed.nodes.items():
            proc = AgentProcess(
                name, node.argv_prefix, os.path.join(self.run_dir, "logs", f"{name}.log"), self.clock, self._agent_event
            )
            self.agents[name] = proc
            proc.start()
        for name, proc in self.agents.items():
            proc.wait_ready()
            off, unc = proc.clock_offset()
            self.offsets[name] = off
            self.controller("clock-offset", node=name, offset_ns=off, uncertainty_ns=unc)

    def configure(self, name: str) -> None:
        node = self.testbed.nodes[name]
        cmd = {
            "cmd": "configure",
            "node": name,
            "eid": node.eid,
            "store": {"path": os.path.abspath(node.store_path)},
            "clas": list(node.clas),
            "contacts": [
                {
                    "frm": c.frm,
                    "to": c.to,
                    "start_ns": c.start_ns,
                    "end_ns": c.end_ns,
                    "rate": c.rate,
                    "owlt_ns": c.owlt_ns,
                }
                for c in self.plan.wall_contacts
            ],
            "nodes": {n.name: n.eid for n in self.scenario.nodes},
            # The agent's clock is ours plus its offset: its epoch is our t0 in its time.
            "epoch_ns": self.t0 + self.offsets.get(name, 0),
            "scale": 1.0,  # wall contacts: already divided by the scenario's scale
        }
        self.agents[name].call(cmd)

    # -- replay -------------------------------------------------------------------------

    def wall_abs(self, scenario_ns: int) -> int:
        return self.t0 + scenario_to_wall_ns(scenario_ns, self.scenario.clock.scale)

    def _sleep_until(self, wall_abs: int) -> bool:
        """Sleep until ``wall_abs``; False if the run was stopped meanwhile."""
        while True:
            if self._stop.is_set():
                return False
            left = wall_abs - self.clock.now_ns()
            if left <= 0:
                return True
            self._stop.wait(min(left / 1e9, SETTLE_POLL_S))
            self._check_health()

    def _check_health(self) -> None:
        if self.log.error is not None and not self.failure:
            self.failure = f"cannot write {self.log.path}: {self.log.error.strerror or self.log.error}"
        for name, proc in self.agents.items():
            if not proc.exited_on_purpose and proc.proc is not None and not proc.alive():
                self.failure = f"agent {name} exited on its own (status {proc.returncode()}); see {proc.log_path}"
        if self.failure:
            raise TestbedError(self.failure)

    def _seed_for(self, tag: str) -> int:
        h = hashlib.sha256(f"{self.scenario.seed}:{tag}".encode()).digest()
        return int.from_bytes(h[:6], "big")

    def _inject(self, action) -> None:
        d = action.details
        tag = f"{action.subject}#{d['seq'] + 1}"
        seed = self._seed_for(tag)
        frm, to = d["from"], d["to"]
        dest = self.scenario.node(to).eid
        lifetime_wall = max(1_000_000, scenario_to_wall_ns(int(d["lifetime_ns"]), self.scenario.clock.scale))
        prio = {"bulk": 0, "normal": 1, "expedited": 2}.get(str(d.get("priority", "normal")), 1)
        rec = {
            "tag": tag,
            "traffic": action.subject,
            "index": d["seq"] + 1,
            "frm": frm,
            "to": to,
            "size": int(d["size"]),
            "sha256": payload_sha256(seed, int(d["size"])),
            "lifetime_ns": int(d["lifetime_ns"]),
        }
        at = self.clock.now_ns()
        proc = self.agents[frm]
        try:
            cid = proc.send(
                {
                    "cmd": "inject",
                    "dest": dest,
                    "size": int(d["size"]),
                    "seed": seed,
                    "lifetime_ns": lifetime_wall,
                    "priority": prio,
                    "tag": tag,
                }
            )
        except AgentError as e:
            self.controller("inject-failed", at, reason=str(e), **rec)
            return

        def collect() -> None:
            try:
                result = proc.wait_reply(cid)
            except AgentError as e:
                self.controller("inject-failed", at, reason=str(e), **rec)
                # The scenario's traffic could not be put in (a full disk, a dead
                # agent): what follows would judge a different run.
                if not self._stop.is_set() and not self.failure:
                    self.failure = f"injecting {tag}: {e}"
                return
            with self._lock:
                self.injected[tag] = rec
                self.key_to_tag[result["bundle"]] = tag
            self.controller("inject", at, bundle=result["bundle"], **rec)

        threading.Thread(target=collect, daemon=True).start()

    def _settled(self, pending_injects: int) -> bool:
        if pending_injects:
            return False
        total = self.scenario.bundles_total()
        with self._lock:
            if len(self.injected) < total:
                return False
            # Settled: delivered (or expired) and no copy left waiting for an ack anywhere.
            return all(k in self.settled_keys and not self.holders.get(k) for k in self.key_to_tag)

    def replay(self) -> str:
        """Run the script; returns why it ended (settled | duration)."""
        sc = self.scenario
        self.t0 = self.clock.now_ns() + START_MARGIN_NS
        self.log.set_t0(self.t0)
        for name in self.agents:
            self.configure(name)
        for link in sc.links:
            fwd, bwd = emulator_schedule(sc, link, self.t0)
            h = self.handles[link.name]
            for e in fwd:
                h.schedule("a->b", e)
            for e in bwd:
                h.schedule("b->a", e)
        self.controller(
            "run-start",
            self.t0,
            name=sc.name,
            scenario=sc.source,
            scale=sc.clock.scale,
            duration_ns=sc.clock.duration_ns,
            seed=sc.seed,
            backend=self.backend_name,
            backend_reason=self.backend_why,
            nodes={n.name: n.eid for n in sc.nodes},
            links=[{"name": ln.name, "a": ln.a, "b": ln.b, "medium": ln.medium} for ln in sc.links],
        )
        actions = [
            a
            for a in self.plan.actions
            if a.kind in ("inject", "crash", "restart", "cut", "restore", "burst-start", "burst-end")
        ]
        injects_left = sum(1 for a in actions if a.kind == "inject")
        for action in actions:
            at = self.wall_abs(action.at_ns)
            if not self._sleep_until(at):
                return "interrupted"
            if action.kind == "inject":
                self._inject(action)
                injects_left -= 1
            elif action.kind == "crash":
                self.agents[action.subject].kill()
                self.controller("crash", node=action.subject)
            elif action.kind == "restart":
                proc = self.agents[action.subject]
                proc.start()
                proc.wait_ready()
                off, unc = proc.clock_offset()
                self.offsets[action.subject] = off
                self.controller("clock-offset", node=action.subject, offset_ns=off, uncertainty_ns=unc)
                self.configure(action.subject)
                self.controller("restart", node=action.subject)
            elif action.kind in ("cut", "restore"):
                self.controller(action.kind, at, link=action.subject)  # the emulator applies it
            elif action.kind in ("burst-start", "burst-end"):
                self.controller(
                    action.kind,
                    at,
                    link=action.subject,
                    **({"ber": action.details["ber"]} if "ber" in action.details else {}),
                )
        end = self.wall_abs(sc.clock.duration_ns)
        while self.clock.now_ns() < end:
            if self.options.until_settled and self._settled(0) and not self._pending_restarts():
                return "settled"
            if not self._sleep_until(min(end, self.clock.now_ns() + int(SETTLE_POLL_S * 1e9))):
                return "interrupted"
        return "duration"

    def _pending_restarts(self) -> bool:
        return any(not p.alive() for p in self.agents.values())

    def stop(self) -> None:
        self._stop.set()

    # -- teardown -----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        problems: list[str] = []
        self._stop.set()
        # All agents at once: one whose shutdown waits on a session over a link
        # that is down takes seconds to give up, and 50 of them in a row took minutes.
        asked = {}
        for name, proc in self.agents.items():
            if proc.alive():
                try:
                    asked[name] = proc.send({"cmd": "status"})
                except AgentError:
                    pass
        deadline = time.monotonic() + 3.0
        for name, cid in asked.items():
            try:
                left = max(0.0, deadline - time.monotonic())
                self.controller("agent-status", node=name, status=self.agents[name].wait_reply(cid, timeout_s=left))
            except AgentError:
                pass

        def stop(name: str, proc: AgentProcess) -> None:
            try:
                proc.stop()
            except Exception as e:  # keep tearing down the rest
                problems.append(f"agent {name}: {e}")

        stoppers = [threading.Thread(target=stop, args=item, name=f"stop-{item[0]}") for item in self.agents.items()]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if self.engine is not None:
            for name, h in self.handles.items():
                try:
                    self.controller("link-stats", link=name, stats=h.stats())
                except LinkError as e:
                    problems.append(f"link {name} stats: {e}")
            try:
                self.engine.stop()
                self.engine.join(5)
                self.engine.close()
            except Exception as e:
                problems.append(f"engine: {e}")
        if self.testbed is not None:
            problems += self.testbed.teardown()
        return problems


def run(
    path: str,
    options: RunOptions,
    progress: Callable[[dict], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the scenario at ``path``; never raises for run problems (they become exit 2)."""
    say = say or (lambda msg: print(msg, file=sys.stderr))
    scenario, plan = prepare(path, options)  # InputError/ScenarioErrors propagate: exit 2, nothing started
    backend, why = choose_backend(options.backend)
    try:
        run_dir = make_run_dir(scenario, options.out_dir)
        shutil.copyfile(path, os.path.join(run_dir, "scenario.yaml"))
    except OSError as e:
        raise TestbedError(f"cannot make the run folder: {e}") from None
    if not options.quiet:
        say(f"hilnet run {scenario.name}: backend {backend} ({why}); run folder {run_dir}")
        for w in plan.warnings:
            say(f"plan warning: {w}")
    try:
        replay = Replay(scenario, plan, run_dir, options, backend, why, progress)
    except OSError as e:
        raise TestbedError(f"cannot write to the run folder {run_dir}: {e}") from None
    reason, exit_code, detail = "duration", 0, ""
    started = time.monotonic()
    try:
        replay.build()
        reason = replay.replay()
    except KeyboardInterrupt:
        reason, exit_code, detail = "interrupted", 2, "interrupted (Ctrl-C or SIGTERM)"
    except HilnetError as e:
        reason, exit_code, detail = "error", 2, str(replay.failure or e)
    finally:
        problems = replay.teardown()
        replay.controller(
            "run-end",
            reason=reason,
            detail=detail or None,
            wall_s=round(time.monotonic() - started, 3),
            teardown_problems=problems or None,
        )
        replay.log.close()
    if replay.log.error is not None and exit_code != 2:
        reason, exit_code = "error", 2
        detail = f"cannot write {replay.log.path}: {replay.log.error.strerror or replay.log.error}"
    events = replay.log.records()
    report = check_run(scenario, plan, events)
    if exit_code == 0 and not report.passed:
        exit_code = 1
    if reason == "interrupted" and exit_code == 0:
        exit_code = 2
    try:
        from hilnet.report import write_reports

        write_reports(
            run_dir,
            scenario,
            plan,
            events,
            report,
            {"backend": backend, "backend_reason": why, "seed": scenario.seed, "junit": options.junit},
        )
    except ImportError:
        _minimal_summary(run_dir, report, reason)
    except OSError as e:  # a full disk: the verdict is still printed, the folder is incomplete
        exit_code = 2
        detail = (detail + "; " if detail else "") + f"cannot write the reports: {e}"
    if problems:
        detail = (detail + "; " if detail else "") + "teardown left: " + ", ".join(problems)
    return RunResult(exit_code, run_dir, report, detail or reason)


def _minimal_summary(run_dir: str, report: CheckReport, reason: str) -> None:
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(
            {"passed": report.passed, "end_reason": reason, "results": [dataclasses.asdict(r) for r in report.results]},
            f,
            indent=2,
        )
