"""Real ``hilnet agent --stdio`` processes for the integration, interop and fuzz tests.

A :class:`Procs` starts agents through the controller's own driver
(:class:`hilnet.stacks.agent_process.AgentProcess`), collects their events per
node, waits on conditions over them, and stops every agent it started.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hilnet.agent.protocol import Command, Event, event_json, parse_command
from hilnet.clock import MonotonicClock
from hilnet.stacks.agent_process import AgentProcess

MS = 1_000_000


def command(fields: Mapping[str, Any]) -> Command:
    """The typed command a test writes as a dict, read by the agent's own parser (so it is checked)."""
    return parse_command(json.dumps(fields))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Agent processes of one test, with their events."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.agents: dict[str, AgentProcess] = {}
        self.events: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def _on_event(self, name: str, ev: Event) -> None:
        with self._lock:
            self.events.setdefault(name, []).append(event_json(ev))

    def _on_unreadable(self, name: str, message: str) -> None:
        with self._lock:
            self.events.setdefault(name, []).append({"event": "log", "level": "error", "message": message})

    def start(self, name: str) -> AgentProcess:
        proc = self.agents.get(name)
        if proc is None:
            log = str(self.tmp / "logs" / f"{name}.log")
            proc = AgentProcess(name, (), log, MonotonicClock(), self._on_event, self._on_unreadable)
            self.agents[name] = proc
        proc.start()
        proc.wait_ready()
        return proc

    def configure(
        self, name: str, eid: str, clas: list[dict], routes: dict | None = None, **extra: Any
    ) -> Mapping[str, Any]:
        cmd = {
            "cmd": "configure",
            "node": name,
            "eid": eid,
            "store": {"path": str(self.tmp / f"{name}.sqlite")},
            "clas": clas,
            "routes": routes or {},
            **extra,
        }
        return self.call(name, cmd)

    def call(self, name: str, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """Send the command ``fields`` describe to agent ``name``; its reply's result."""
        return self.agents[name].call(command(fields))

    def of(self, name: str, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events.get(name, []) if e.get("event") == kind]

    def log_of(self, name: str) -> str:
        try:
            return (self.tmp / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait(self, cond: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                tails = {n: [e.get("event") for e in self.events.get(n, [])][-12:] for n in self.agents}
                raise AssertionError(
                    f"{what}: not within {timeout_s} s; last events {tails}; "
                    + "; ".join(f"{n} log: {self.log_of(n)[-600:]}" for n in self.agents)
                )
            time.sleep(0.01)

    def status(self, name: str) -> dict:
        return self.call(name, {"cmd": "status"})

    def stop_all(self) -> None:
        for proc in self.agents.values():
            proc.stop(timeout_s=3.0)
