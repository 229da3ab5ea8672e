"""What a person watching ``hilnet run`` sees: a live view while it runs, a summary at the end.

:class:`LiveView` subscribes to the run's event records (the same dicts that
go to events.jsonl). On a terminal it keeps one block redrawn in place with
ANSI escapes (scenario clock, progress bar, each link's state, bundles stored
per node, deliveries so far) and prints notable events (link up/down, cuts,
crashes, deliveries) above it as a scrolling log. Elsewhere (CI logs, a pipe)
it prints those notable events as plain lines, and a progress line at most
every ``interval_ns`` of wall time. Quiet mode prints nothing.

:func:`format_summary` is the table printed at the end of ``hilnet run`` and by
``hilnet report``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from typing import TextIO

from hilnet.ledger import Ledger
from hilnet.report.figures import STREAM_HEADERS, stream_table
from hilnet.report.meta import RunMeta
from hilnet.report.text import clock, duration, signed, table
from hilnet.scenario.model import Scenario
from hilnet.units import wall_to_scenario_ns
from hilnet.verdict import CheckReport

NS_PER_S = 1_000_000_000
BAR_WIDTH = 30

_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"


class LiveView:
    """Live progress of one run. Feed it records with :meth:`update`, call :meth:`render` periodically.

    ``update`` also draws, rate-limited (a terminal at most every
    ``redraw_ns``, or at once for a notable event; plain output every
    ``interval_ns``), using the record's ``wall_ns`` as now, so a subscriber
    that only forwards records gets a live view. A caller with a timer may
    also call ``render(now_ns)`` (wall ns since the run's start; the scenario
    clock shown is ``now_ns * scale``) to keep the clock moving through quiet
    stretches. Thread-safe: records and timer may come from different threads.
    """

    def __init__(
        self,
        scenario: Scenario,
        stream: TextIO,
        is_tty: bool,
        quiet: bool = False,
        interval_ns: int = 5 * NS_PER_S,
        redraw_ns: int = NS_PER_S // 4,
    ):
        self.scenario = scenario
        self.stream = stream
        self.is_tty = is_tty
        self.quiet = quiet
        self.interval_ns = interval_ns  # off a terminal: least wall time between progress lines
        self.redraw_ns = redraw_ns  # on a terminal: least wall time between redraws from update()
        self._lock = threading.RLock()
        self.wall_ns = 0  # latest wall time seen in a record or a render call
        self._last_redraw_ns: int | None = None
        self.t_ns = 0  # latest scenario time seen in a record
        self.total = scenario.bundles_total()
        self.ledger = Ledger()  # who holds which bundle, from the same records
        self.ended: str | None = None
        self._link_dirs: dict[str, dict[str, bool]] = {link.name: {} for link in scenario.links}
        self._cut: set[str] = set()
        self._burst: set[str] = set()
        self._crashed: set[str] = set()
        self._tls_said: set[tuple[object, object]] = set()  # (node, reason) of tls-failed lines printed
        self._pending: list[str] = []  # notable lines not yet printed (terminal mode)
        self._block_lines = 0  # lines of the block on screen now, to erase on redraw
        self._last_progress_ns: int | None = None

    # -- state ----------------------------------------------------------------

    def update(self, record: Mapping) -> None:
        """Take one event record (as written to events.jsonl) and draw if it is time to."""
        with self._lock:
            t = record.get("t_ns")
            if isinstance(t, int):
                self.t_ns = max(self.t_ns, t)
            w = record.get("wall_ns")
            if isinstance(w, int):
                self.wall_ns = max(self.wall_ns, w)
            self.ledger.fold(record)
            src, kind = record.get("src"), record.get("event")
            if src == "link":
                self._link_record(record, kind)
            elif src == "controller":
                self._controller_record(record, kind)
            elif src == "agent":
                self._agent_record(record, kind)
            if self.quiet:
                return
            if self.is_tty:
                due = self._last_redraw_ns is None or self.wall_ns - self._last_redraw_ns >= self.redraw_ns
                if self._pending or due:
                    self._redraw(self.wall_ns)
            else:
                self.render(self.wall_ns)

    def _link_record(self, r: Mapping, kind: object) -> None:
        link = r.get("link")
        if kind not in ("up", "down") or link not in self._link_dirs:
            return
        before = self.link_state(link)
        self._link_dirs[link][str(r.get("direction", "a->b"))] = kind == "up"
        after = self.link_state(link)
        if after != before:
            self._notable(f"link {link} {after}", r)

    def _controller_record(self, r: Mapping, kind: object) -> None:
        link, node = r.get("link"), r.get("node")
        if kind == "inject-failed":
            self._notable(f"injection of {r.get('tag')} failed: {r.get('reason', 'no reason given')}", r)
        elif kind == "cut":
            self._cut.add(str(link))
            self._notable(f"fault: link {link} cut", r)
        elif kind == "restore":
            self._cut.discard(str(link))
            self._notable(f"fault over: link {link} restored", r)
        elif kind == "burst-start":
            self._burst.add(str(link))
            self._notable(f"fault: error burst on {link} (bit error rate {r.get('ber', '?')})", r)
        elif kind == "burst-end":
            self._burst.discard(str(link))
            self._notable(f"fault over: error burst on {link} ended", r)
        elif kind == "crash":
            self._crashed.add(str(node))
            self._notable(f"fault: agent {node} crashed", r)
        elif kind == "restart":
            self._crashed.discard(str(node))
            self._notable(f"agent {node} restarted", r)
        elif kind == "run-end":
            self.ended = str(r.get("reason", "?"))
            detail = f" ({r['detail']})" if r.get("detail") else ""
            self._notable(f"run ended: {self.ended}{detail}", r)

    def _agent_record(self, r: Mapping, kind: object) -> None:
        if kind == "tls-failed":  # once per node and reason: a connector retries, and fails alike each time
            said = (r.get("node"), r.get("reason"))
            if said not in self._tls_said:
                self._tls_said.add(said)
                self._notable(f"TLS refused at {r.get('node')}: {r.get('reason')}", r)
            return
        key, node = r.get("bundle"), r.get("node")
        if not isinstance(key, str) or not isinstance(node, str):
            return
        made = self.ledger.injection_of(key)
        tag = made.tag if made is not None else key
        if kind == "delivered":
            after = f" after {duration(int(r.get('t_ns', 0)) - made.t_ns)}" if made is not None else ""
            again = "" if len(self.ledger.deliveries(key)) == 1 else " AGAIN (duplicate)"
            self._notable(f"delivered {tag} at {node}{after}{again}", r)
        elif kind == "expired":
            self._notable(f"{tag} expired at {node}", r)

    def link_state(self, link: str) -> str:
        """``up``, ``down``, or per direction when they differ; before any record, the plan's state."""
        dirs = self._link_dirs.get(link, {})
        if not dirs:
            state = "up" if self._planned_up(link, self.t_ns) else "down"
        elif all(dirs.values()):
            state = "up"
        elif not any(dirs.values()):
            state = "down"
        else:
            state = "/".join(f"{d} {'up' if up else 'down'}" for d, up in sorted(dirs.items()))
        return state

    def _planned_up(self, name: str, t_ns: int) -> bool:
        link = self.scenario.link(name)
        return not link.windows or any(w.start_ns <= t_ns < w.end_ns for w in link.windows)

    def stored(self) -> dict[str, int | str]:
        """Bundles each node holds now, by its stack's events; "?" where its stack cannot tell (docs/stacks.md)."""
        led = self.ledger
        return {n.name: led.held_by(n.name) if led.observes(n.name).stored else "?" for n in self.scenario.nodes}

    # -- output ---------------------------------------------------------------

    def _notable(self, text: str, r: Mapping) -> None:
        if self.quiet:
            return
        line = f"[{clock(int(r.get('t_ns', self.t_ns)))}] {text}"
        if self.is_tty:
            self._pending.append(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def render(self, now_ns: int) -> None:
        """Draw the view at wall time ``now_ns`` (ns since the run's start)."""
        with self._lock:
            self.wall_ns = max(self.wall_ns, now_ns)
            if self.quiet:
                return
            if self.is_tty:
                self._redraw(now_ns)
            elif self._last_progress_ns is None or now_ns - self._last_progress_ns >= self.interval_ns:
                self._last_progress_ns = now_ns
                self.stream.write(self.progress_line(now_ns) + "\n")
                self.stream.flush()

    def close(self, now_ns: int | None = None) -> None:
        """Last draw at the end of the run (default now: the latest record); leaves the cursor below."""
        with self._lock:
            now = self.wall_ns if now_ns is None else now_ns
            if self.quiet:
                return
            if self.is_tty:
                self._redraw(now)
            else:
                self.stream.write(self.progress_line(now) + "\n")
                self.stream.flush()

    def _scenario_now(self, now_ns: int) -> int:
        # wall_ns is negative while the testbed is built: the scenario clock has not started
        return min(
            max(self.t_ns, wall_to_scenario_ns(max(0, now_ns), self.scenario.clock.scale), 0),
            self.scenario.clock.duration_ns,
        )

    def progress_line(self, now_ns: int) -> str:
        """One plain line: scenario clock, progress, deliveries and stores."""
        t = self._scenario_now(now_ns)
        pct = 100 * t // max(1, self.scenario.clock.duration_ns)
        stored = self.stored()
        stores = " ".join(f"{n}={c}" for n, c in _few(stored))
        return (
            f"[{clock(t)}] {pct:3d}% of {clock(self.scenario.clock.duration_ns)}, wall {duration(max(0, now_ns))}: "
            f"delivered {self.ledger.delivered()}/{self.total}, stored {stores}"
        )

    def block(self, now_ns: int) -> list[str]:
        """The terminal block's lines (with ANSI colours)."""
        dur = self.scenario.clock.duration_ns
        t = self._scenario_now(now_ns)
        filled = BAR_WIDTH * t // max(1, dur)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        lines = [
            f"{_BOLD}{self.scenario.name}{_RESET}  scenario {clock(t)} / {clock(dur)}  [{bar}] "
            f"{100 * t // max(1, dur):3d}%  wall {duration(max(0, now_ns))}"
        ]
        links = self.scenario.links
        if len(links) > MANY:
            # A large run's block stays a few lines: the links by state, then those not up by name.
            states = [(link.name, self.link_state(link.name)) for link in links]
            up = sum(1 for _, st in states if st == "up")
            down = [name for name, st in states if st != "up"]
            lines.append(f"  links      {up} up, {len(down)} not up" + (f" ({_names(down)})" if down else ""))
            links = ()
        for link in links:
            state = self.link_state(link.name)
            colour = _GREEN if state == "up" else _RED if state == "down" else _YELLOW
            extra = (" CUT" if link.name in self._cut else "") + (" BURST" if link.name in self._burst else "")
            lines.append(f"  link {link.name:<16} {colour}{state}{_RESET}{_RED}{extra}{_RESET}")
        stores = []
        for n, c in _few(self.stored()):
            mark = f" {_RED}crashed{_RESET}" if n in self._crashed else ""
            stores.append(f"{n} {c}{mark}")
        lines.append("  stored     " + ", ".join(stores))
        lines.append(f"  delivered  {self.ledger.delivered()} of {self.total} (injected {self.ledger.injected()})")
        return lines

    def _redraw(self, now_ns: int) -> None:
        out = []
        if self._block_lines:
            # up to the first line of the old block, then clear to the end of the screen
            out.append(f"\x1b[{self._block_lines}F\x1b[J")
        out.extend(line + "\n" for line in self._pending)
        self._pending.clear()
        lines = self.block(now_ns)
        out.extend(line + "\n" for line in lines)
        self._last_redraw_ns = now_ns
        self._block_lines = len(lines)
        self.stream.write("".join(out))
        self.stream.flush()


def format_summary(report: CheckReport, meta: RunMeta) -> str:
    """The end-of-run summary: verdict, one row per expectation and per stream, fidelity, folder."""
    verdict = "PASS" if report.passed else "FAIL"
    lines = [
        f"{verdict}: {meta.scenario_name} (seed {meta.seed if meta.seed is not None else '-'}, "
        f"backend {meta.backend or '-'}, wall {duration(meta.wall_duration_ns)}, "
        f"ended {report.end_reason} at scenario {clock(report.end_ns)})",
    ]
    if meta.stacks:
        lines.append(f"stacks: {meta.stacks_line()}")
    lines.append("")
    rows = [("PASS" if r.passed else "FAIL", r.name, r.expected, r.actual) for r in report.results]
    lines += table(("", "expectation", "expected", "actual"), rows)
    for r in report.results:
        for failure in r.failures:
            lines.append(f"  FAIL {r.name}: {failure}")
    streams = stream_table(report)
    if streams:
        lines.append("")
        lines += table(
            STREAM_HEADERS,
            [
                (
                    name,
                    s.priority,
                    f"{s.delivered}/{s.injected}",
                    duration(s.latency_p50_ns),
                    duration(s.latency_max_ns),
                    signed(s.lateness_p50_ns),
                    signed(s.lateness_max_ns),
                )
                for name, s in streams
            ],
        )
    f = report.fidelity
    lines.append("")
    if f.edges:
        lines.append(
            f"schedule fidelity: {len(f.edges)} link changes, |applied - intended| "
            f"p50 {duration(f.p50_ns)}, p99 {duration(f.p99_ns)}, max {duration(f.max_ns)}"
        )
    else:
        lines.append("schedule fidelity: no link change was recorded")
    for port in f.remote:
        lines.append(
            f"remote port: link {port.link} end {port.end} through {port.server}: network round trip "
            f"{_ms(port.rtt_us)}, jitter {_ms(port.rttvar_us)} (TCP's RTT variation; a local port has none)"
        )
    lines.append(f"run folder: {meta.run_dir}")
    return "\n".join(lines)


def _ms(us: int | None) -> str:
    return "unknown" if us is None else f"{us / 1000:.2f} ms"


def print_summary(
    report: CheckReport, run_dir: str | os.PathLike[str], stream: TextIO | None = None, meta: RunMeta | None = None
) -> None:
    """Print :func:`format_summary` to ``stream`` (stdout).

    Without ``meta``, the seed, backend, scenario name and wall duration come from
    the summary.json that :func:`~hilnet.report.write_reports` left in ``run_dir``.
    """
    if meta is None:
        meta = _meta_from_summary(os.fspath(run_dir))
    out = stream or sys.stdout
    out.write(format_summary(report, meta) + "\n")
    out.flush()


def _meta_from_summary(run_dir: str) -> RunMeta:
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}

    def get(key: str, kind: type, default):
        v = doc.get(key)
        return v if isinstance(v, kind) and not isinstance(v, bool) else default

    return RunMeta(
        run_dir=run_dir,
        scenario_name=get("scenario", str, os.path.basename(run_dir.rstrip("/"))),
        seed=get("seed", int, None),
        backend=get("backend", str, None),
        scale=1.0,
        duration_ns=0,
        wall_duration_ns=get("wall_duration_ns", int, 0),
        stacks={str(k): str(v) for k, v in get("stacks", dict, {}).items()},
    )


MANY = 12  # above this many links or nodes, the live view summarises instead of listing each


def _few(stored: Mapping[str, object]) -> list[tuple[str, object]]:
    """Each node's store count, or in a large run only the nodes that hold something (the first few)."""
    items = list(stored.items())
    if len(items) <= MANY:
        return items
    holding = [(n, c) for n, c in items if c not in (0, "0")]
    return holding[:MANY] + ([("...", f"{len(holding) - MANY} more")] if len(holding) > MANY else [])


def _names(names: list[str]) -> str:
    return ", ".join(names[:MANY]) + (f", ... {len(names) - MANY} more" if len(names) > MANY else "")
