"""``hilnet run``: build the testbed, replay the scenario, gather events, judge.

Sequence: load and compile (bad input exits 2 before any process starts) ->
build the backend -> open one emulated link per scenario link, gates closed ->
start the agents and estimate their clocks -> give the emulator each link's
full script (windows, changes, cuts, bursts) in run time and configure every
agent, held -> only then, however long that took, pick the run's start ``t0``
a moment ahead, and tell the emulator and every agent -> replay traffic and agent faults on the scaled clock -> stop at the scenario's
duration, or once every bundle is settled -> tear everything down (also on
Ctrl-C and errors) -> checks. The reports are the caller's (the CLI writes
them from the :class:`RunResult`).

The testbed and its records are :mod:`hilnet.controller.session`'s, the
timing is :mod:`hilnet.controller.sequencer`'s, the teardown
:mod:`hilnet.controller.teardown`'s. Every event from agents, links and the
controller lands in ``events.jsonl`` with one time base (docs/run.md).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hilnet.clock import MonotonicClock, WallClock
from hilnet.controller.checks import check_run
from hilnet.controller.sequencer import Sequencer
from hilnet.controller.session import Session
from hilnet.errors import HilnetError, InputError, ScenarioError, ScenarioErrors, TestbedError
from hilnet.scenario.load import load_scenario
from hilnet.scenario.model import PowerCut, Scenario
from hilnet.scenario.plan import Plan, compile_plan
from hilnet.scenario.wall import in_wall_terms, refusals
from hilnet.stacks.registry import refuse_what_stacks_cannot_do, require_stacks
from hilnet.testbed.hosting import place_agents
from hilnet.verdict import CheckReport

# t0 this far after everything is armed: enough to tell every node of it, and for the engine
# to take in each link's script and set its initial state (about 25 us a link when idle).
START_MARGIN_NS = 300_000_000
LINK_MARGIN_NS = 200_000
NODE_MARGIN_NS = 5_000_000  # a start command and its reply per node (measured: 100 agents, 2 cores, ~4 ms each)
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class RunOptions:
    backend: str | None = None  # loopback | netns | None (choose); a bench file makes it bench
    bench: str | None = None  # a bench file: real boards (docs/bench.md)
    out_dir: str | None = None
    force: bool = False  # empty an existing run folder given as out_dir
    scale: float | None = None
    seed: int | None = None
    pcap: bool = False
    until_settled: bool = True
    quiet: bool = False
    junit: str | None = None
    console: Any = None  # a writable text stream for progress (default: stderr)
    agents: str = "auto"  # auto | process | hosted: one process per node, or many per agent host


@dataclass(frozen=True)
class RunResult:
    """How a run ended, with what the reports need (the scenario as run, its plan, its log)."""

    exit_code: int  # 0 pass, 1 an expectation failed, 2 bad input / broken testbed
    run_dir: str
    report: CheckReport | None
    end_reason: str  # settled | duration | interrupted | error
    scenario: Scenario
    plan: Plan
    events: tuple[Mapping[str, Any], ...]
    backend: str
    backend_reason: str
    detail: str = ""  # what broke, for exit 2
    teardown_problems: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """One line: what broke and what teardown left behind, or else why the run ended."""
        detail = self.detail
        if self.teardown_problems:
            detail = (detail + "; " if detail else "") + "teardown left: " + ", ".join(self.teardown_problems)
        return detail or self.end_reason


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
        raise InputError(f"unknown backend {requested!r}; expected loopback or netns (a bench run takes --bench BENCH)")
    ok, why = netns_available()
    if ok:
        return "netns", why
    return "loopback", f"netns unavailable ({why})"


def prepare(path: str, options: RunOptions) -> tuple[Scenario, Plan]:
    """The scenario as the run will use it (its figures as written: reports show them) and its plan."""
    scenario = load_scenario(path)
    if options.bench is None:
        refuse_power_cuts(scenario)
    if options.scale is not None:
        if not options.scale > 0:
            raise InputError(f"--scale must be above 0, got {options.scale}")
        scenario = dataclasses.replace(scenario, clock=dataclasses.replace(scenario.clock, scale=options.scale))
        problems = refusals(scenario)  # under compress: all, another scale makes other wall rates
        if problems:
            raise ScenarioErrors(problems)
    if options.seed is not None:
        scenario = dataclasses.replace(scenario, seed=options.seed)
    return scenario, compile_plan(scenario)


def refuse_power_cuts(scenario: Scenario) -> None:
    """A ``power-cut`` needs boards with power commands: without a bench it cannot be run."""
    cuts = [f for f in scenario.faults if isinstance(f, PowerCut)]
    if cuts:
        raise ScenarioErrors(
            [
                ScenarioError(
                    f"power-cut: {f.node} switches a board off, and this run has no bench; expected "
                    "--bench BENCH with a board that has power commands (or a crash: fault instead)",
                    scenario.source,
                    f.line,
                    f.col,
                )
                for f in cuts
            ]
        )


def make_run_dir(scenario: Scenario, out_dir: str | None, clock: WallClock, force: bool = False) -> str:
    """``out_dir`` (empty, or emptied with ``force``), or ``runs/<local date-time>-<name>[-n]``; created.

    A run folder is never shared: an old run's events and stores in it would mix
    with the new run's, so a non-empty ``out_dir`` is refused without ``force``.
    """
    if out_dir:
        run_dir = out_dir
        _claim_out_dir(out_dir, force)
    else:
        if os.path.basename(scenario.name) != scenario.name or scenario.name in ("", ".", ".."):
            raise InputError(f"scenario name {scenario.name!r} is not a single folder name; it names the run folder")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clock.wall_ns() // NS_PER_S))
        run_dir = os.path.join("runs", f"{stamp}-{scenario.name}")
        n = 1
        while os.path.exists(run_dir):
            n += 1
            run_dir = os.path.join("runs", f"{stamp}-{scenario.name}-{n}")
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def _claim_out_dir(out_dir: str, force: bool) -> None:
    """Refuse a non-empty ``out_dir`` (with ``force``: empty it, if it is a run folder)."""
    if not os.path.lexists(out_dir):
        return
    if not os.path.isdir(out_dir) or os.path.islink(out_dir):
        raise InputError(f"--out {out_dir}: exists and is not a directory; expected a new or empty run folder")
    entries = os.listdir(out_dir)
    if not entries:
        return
    if not force:
        raise InputError(
            f"--out {out_dir}: holds {len(entries)} entries (an earlier run?); its events and stores would mix "
            "with this run's: choose a new folder, or add --force to empty it first"
        )
    if "scenario.yaml" not in entries:  # a run folder always has it: never wipe a folder that is something else
        raise InputError(f"--out {out_dir} --force: no scenario.yaml in it, so not a run folder; refusing to empty it")
    for entry in entries:
        p = os.path.join(out_dir, entry)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def run(
    path: str,
    options: RunOptions,
    progress: Callable[[dict], None] | None = None,
    say: Callable[[str], None] | None = None,
    clock: WallClock | None = None,
) -> RunResult:
    """Run the scenario at ``path`` and judge it; never raises for run problems (they become exit 2).

    ``progress`` gets every event record as it is written (the live view).
    Writing the reports is the caller's: see :class:`RunResult`.
    """
    say = say or (lambda msg: print(msg, file=sys.stderr))
    clock = clock or MonotonicClock()
    scenario, plan = prepare(path, options)  # InputError/ScenarioErrors propagate: exit 2, nothing started
    bench = None
    if options.bench is not None:
        from hilnet.bench.load import load_bench

        bench = load_bench(options.bench, scenario)  # every mismatch with the scenario: exit 2, nothing started
        backend, why = "bench", f"--bench {options.bench}"
    else:
        backend, why = choose_backend(options.backend)
    placement = place_agents(backend, [n.name for n in scenario.nodes if n.stack == "hilnet"], options.agents)
    require_stacks((n.name, n.stack) for n in scenario.nodes)  # a stack that is not installed: exit 2, nothing started
    refuse_what_stacks_cannot_do(scenario, backend)
    run_dir = _run_folder(path, scenario, options, clock)
    if not options.quiet:
        say(f"hilnet run {scenario.name}: backend {backend} ({why}); run folder {run_dir}")
        say(placement.describe(sum(len(ns) for ns in placement.hosts.values())))
        for w in plan.warnings:
            say(f"plan warning: {w}")
    wall = in_wall_terms(scenario)  # once: the testbed, the emulator and the agents' plans read wall figures
    try:
        session = Session(
            wall,
            plan,
            run_dir,
            backend,
            why,
            pcap=options.pcap,
            progress=progress,
            clock=clock,
            bench=bench,
            agents=options.agents,
        )
    except OSError as e:
        raise TestbedError(f"cannot write to the run folder {run_dir}: {e}") from None
    reason, exit_code, detail, problems = _replay(session, options.until_settled)
    if session.log.error is not None and exit_code != 2:
        reason, exit_code = "error", 2
        detail = f"cannot write {session.log.path}: {session.log.error.strerror or session.log.error}"
    events = tuple(session.log.records())
    report = check_run(scenario, plan, events)
    if exit_code == 0 and not report.passed:
        exit_code = 1
    if reason == "interrupted" and exit_code == 0:
        exit_code = 2
    return RunResult(exit_code, run_dir, report, reason, scenario, plan, events, backend, why, detail, tuple(problems))


def _run_folder(path: str, scenario: Scenario, options: RunOptions, clock: WallClock) -> str:
    """The run folder, made, with copies of the scenario (and bench) files in it."""
    try:
        run_dir = make_run_dir(scenario, options.out_dir, clock, options.force)
        shutil.copyfile(path, os.path.join(run_dir, "scenario.yaml"))
        if options.bench is not None:
            shutil.copyfile(options.bench, os.path.join(run_dir, "bench.yaml"))
    except OSError as e:
        raise TestbedError(f"cannot make the run folder: {e}") from None
    return run_dir


GC_THRESHOLDS = gc.get_threshold()
GC_NEVER = 2**31 - 1


def _only_young_collections() -> None:
    """Until the run ends, Python's collector scans only objects made since its last pass.

    The link engine is a thread of this process, and a collection holds it up for as long as it
    scans: 21 ms for the oldest generation and 7 ms for the middle one in the ISS story, against
    0.6 ms for the youngest. What exists now lives for the whole run and leaves the collector;
    what the run makes and keeps is collected once it ends."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLDS[0], GC_NEVER, GC_NEVER)


def _replay(session: Session, until_settled: bool) -> tuple[str, int, str, list[str]]:
    """Build, replay, tear down; (end reason, exit code so far, detail, teardown problems)."""
    clock = session.clock
    reason, exit_code, detail = "duration", 0, ""
    started = clock.now_ns()
    try:
        session.build()  # and arms every link and node, however long it takes: t0 is chosen after
        _only_young_collections()
        sc = session.scenario
        t0 = clock.now_ns() + START_MARGIN_NS + LINK_MARGIN_NS * len(sc.links) + NODE_MARGIN_NS * len(sc.nodes)
        session.start(t0)
        reason = Sequencer(clock, session.plan, t0, session, until_settled=until_settled).run()
    except KeyboardInterrupt:
        reason, exit_code, detail = "interrupted", 2, "interrupted (Ctrl-C or SIGTERM)"
    except HilnetError as e:
        reason, exit_code, detail = "error", 2, str(session.failure or e)
    finally:
        gc.set_threshold(*GC_THRESHOLDS)
        gc.unfreeze()
        problems = session.teardown()
        session.note(
            "run-end",
            reason=reason,
            detail=detail or None,
            wall_s=round((clock.now_ns() - started) / NS_PER_S, 3),
            teardown_problems=problems or None,
        )
        session.log.close()
    return reason, exit_code, detail, problems
