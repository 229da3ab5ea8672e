"""Helpers for end-to-end tests of ``hilnet run``: run it as a subprocess, read
its run folder, and prove that a run left nothing behind on the machine.

Leak checks are by name, so that runs of other people on the same machine
(namespaces, agents) are never mistaken for ours: the controller writes a
``testbed`` record naming what it built, and every agent announces its pid in
its ``ready`` event.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hilnet.testbed.netns import MARKER_DIR, netns_available

PYTHON = sys.executable
RUN_TIMEOUT_S = 120  # a hang is a failure, never a stuck CI job

_NETNS = netns_available()
BACKENDS = [
    "loopback",
    pytest.param(
        "netns", marks=[pytest.mark.netns, pytest.mark.skipif(not _NETNS[0], reason=f"netns backend: {_NETNS[1]}")]
    ),
]
needs_netns = pytest.mark.skipif(not _NETNS[0], reason=f"netns backend: {_NETNS[1]}")


def write_scenario(dir_: Path, name: str, text: str) -> Path:
    path = dir_ / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def hilnet_run(
    scenario: Path, out: Path, backend: str, *extra: str, timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """``python -m hilnet run SCENARIO --backend B --out OUT -q`` to completion."""
    return subprocess.run(
        [PYTHON, "-m", "hilnet", "run", str(scenario), "--backend", backend, "--out", str(out), "-q", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_run(scenario: Path, out: Path, backend: str, *extra: str) -> subprocess.Popen:
    """The same, left running: for tests that break it from outside."""
    return subprocess.Popen(
        [PYTHON, "-m", "hilnet", "run", str(scenario), "--backend", backend, "--out", str(out), "-q", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = RUN_TIMEOUT_S) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hilnet run hung for {timeout} s; stderr: {err[-2000:]}")
    return proc.returncode, out, err


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written right now
            pass
    return out


def wait_for_event(run_dir: Path, pred, proc: subprocess.Popen, timeout: float = 30.0) -> dict:
    """Poll events.jsonl (appended live) until a record satisfies ``pred``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in events(run_dir):
            if pred(rec):
                return rec
        if proc.poll() is not None:
            pytest.fail(
                f"run ended (exit {proc.returncode}) before the awaited event; "
                f"stderr: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
            )
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the awaited event never came")


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def link_stats(evs: list[dict]) -> dict[str, dict]:
    return {e["link"]: e["stats"] for e in evs if e.get("src") == "controller" and e.get("event") == "link-stats"}


# -- leaks ------------------------------------------------------------------------------------


def _netns_names() -> set[str]:
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {line.split()[0] for line in p.stdout.splitlines() if line.strip()}


def _link_names() -> set[str]:
    p = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    names = set()
    for line in p.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.add(parts[1].strip().split("@")[0])
    return names


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(name: str, controller_pids: set[int]) -> bool:
    """A hn/hx name whose run is over (no marker, dead or our controller)."""
    rid = name[2:].split("-")[0][:4]
    try:
        pid = int(Path(MARKER_DIR, rid).read_text().strip() or 0)
    except (OSError, ValueError):
        return True
    return pid in controller_pids or not _pid_alive(pid)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


class LeakWatch:
    """Snapshot before a run; ``check(run_dir)`` after it fails on anything the run left."""

    def __init__(self) -> None:
        self.netns_before = _netns_names() if _NETNS[0] else set()
        self.links_before = _link_names() if _NETNS[0] else set()

    def check(self, run_dir: Path, controller_pids: set[int] = frozenset(), settle_s: float = 5.0) -> None:
        deadline = time.monotonic() + settle_s
        while True:
            problems = self._problems(run_dir, set(controller_pids))
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # an agent killed by the controller may take a moment to vanish
        assert not problems, "the run left behind: " + "; ".join(problems)

    def _problems(self, run_dir: Path, controller_pids: set[int]) -> list[str]:
        evs = events(run_dir)
        problems = self._netns_problems(evs, controller_pids) if _NETNS[0] else []
        pty_dir = run_dir / "pty"
        if pty_dir.is_dir():
            left = sorted(p.name for p in pty_dir.iterdir())
            if left:
                problems.append(f"pty links {left}")
        return problems + _process_problems(run_dir, evs)

    def _netns_problems(self, evs: list[dict], controller_pids: set[int]) -> list[str]:
        problems = []
        named_ns, named_ifs = _named(evs)
        ns_now, links_now = _netns_names(), _link_names()
        for ns in named_ns & ns_now:
            problems.append(f"network namespace {ns}")
        for ifname in named_ifs & links_now:
            problems.append(f"interface {ifname}")
        # Also what it may have built before it could say so (a build that failed).
        for ns in sorted((ns_now - self.netns_before) - named_ns):
            if ns.startswith("hn") and _orphaned(ns, controller_pids) and ns in _netns_names():
                problems.append(f"network namespace {ns} (unnamed)")
        for ifname in sorted((links_now - self.links_before) - named_ifs):
            if ifname.startswith(("hn", "hx")) and _orphaned(ifname, controller_pids) and ifname in _link_names():
                problems.append(f"interface {ifname} (unnamed)")
        return problems


def _named(evs: list[dict]) -> tuple[set[str], set[str]]:
    """(namespaces, interfaces) the run's ``testbed`` records say it built."""
    named_ns, named_ifs = set(), set()
    for tb in (e for e in evs if e.get("src") == "controller" and e.get("event") == "testbed"):
        for node in tb["nodes"].values():
            prefix = node["command"]
            if prefix[:3] == ["ip", "netns", "exec"]:
                named_ns.add(prefix[3])
        for specs in tb["links"].values():
            named_ifs.update(s[len("eth://") :] for s in specs if s.startswith("eth://"))
    return named_ns, named_ifs


def _process_problems(run_dir: Path, evs: list[dict]) -> list[str]:
    """Agents that announced themselves and still run, and any process naming the run folder."""
    problems = []
    for e in evs:
        if e.get("src") == "agent" and e.get("event") == "ready" and isinstance(e.get("pid"), int):
            pid = e["pid"]
            if "hilnet" in _cmdline(pid) and _state(pid) not in ("Z", ""):
                problems.append(f"agent {e.get('node')} pid {pid}")
    needle = str(run_dir.resolve())
    for entry in os.listdir("/proc"):
        if (
            entry.isdigit()
            and int(entry) != os.getpid()
            and needle in _cmdline(int(entry))
            and _state(int(entry)) != "Z"
        ):
            problems.append(f"process {entry}: {_cmdline(int(entry))[:200]}")
    return problems


def interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C as a terminal would send it (to the controller)."""
    proc.send_signal(signal.SIGINT)
