"""The controller's driver for one node agent process: start, command, crash, stop.

``hilnet agent --stdio`` runs as a subprocess (behind ``argv_prefix``: nothing,
``ip netns exec NS``, or later ``ssh board``). A reader thread turns each line
it writes into an event dict for ``on_event``; replies are matched to the
commands that asked by id. Other DTN implementations can stand in later behind
this same surface (start, configure, inject, events, crash, stop).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from hilnet.clock import Clock
from hilnet.errors import AgentError

READY_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 20.0


class AgentProcess:
    """One agent subprocess and its JSON-lines control channel."""

    def __init__(
        self,
        name: str,
        argv_prefix: tuple[str, ...],
        log_path: str,
        clock: Clock,
        on_event: Callable[[str, dict], None],
    ):
        self.name = name
        self.argv = [*argv_prefix, sys.executable, "-m", "hilnet", "agent", "--stdio"]
        self.log_path = log_path
        self.clock = clock
        self.on_event = on_event
        self.proc: subprocess.Popen | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[Any, list] = {}  # id -> [threading.Event, reply or None]
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.exited_on_purpose = False

    # -- process -----------------------------------------------------------------

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self._ready.clear()
        self.exited_on_purpose = False
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
            )
        except OSError as e:
            raise AgentError(f"agent {self.name}: cannot start {self.argv[0]}: {e.strerror}") from None
        finally:
            log.close()
        self._reader = threading.Thread(target=self._read, args=(self.proc,), name=f"agent-{self.name}", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout_s):
            raise AgentError(
                f"agent {self.name} did not come up within {timeout_s:.0f} s "
                f"(exit status {self.returncode()}); see {self.log_path}"
            )

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read(self, proc: subprocess.Popen) -> None:
        if proc.stdout is None:  # started without a pipe: nothing to read
            return
        for raw in proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                self.on_event(
                    self.name,
                    {"event": "log", "level": "error", "message": f"unreadable line from agent: {raw[:200]!r}"},
                )
                continue
            if not isinstance(ev, dict):
                continue
            kind = ev.get("event")
            if kind == "ready":
                self._ready.set()
            if kind in ("reply", "error") and ev.get("id") in self._waiting:
                with self._lock:
                    slot = self._waiting.get(ev["id"])
                if slot is not None:
                    slot[1] = ev
                    slot[0].set()
                if kind == "reply":
                    continue
            self.on_event(self.name, ev)
        # EOF: wake everyone still waiting for this incarnation
        with self._lock:
            for slot in self._waiting.values():
                slot[0].set()

    # -- commands ----------------------------------------------------------------

    def send(self, cmd: dict) -> Any:
        """Write one command; returns its id."""
        cid = next(self._ids)
        line = json.dumps({**cmd, "id": cid}, separators=(",", ":")) + "\n"
        with self._lock:
            self._waiting[cid] = [threading.Event(), None]
        if not self.alive():
            raise AgentError(f"agent {self.name} is not running (exit status {self.returncode()})")
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise AgentError(f"agent {self.name} closed its control channel; see {self.log_path}") from None
        return cid

    def wait_reply(self, cid: Any, timeout_s: float = REPLY_TIMEOUT_S) -> dict:
        with self._lock:
            slot = self._waiting.get(cid)
        if slot is None:
            raise AgentError(f"agent {self.name}: no command {cid} pending")
        slot[0].wait(timeout_s)
        with self._lock:
            self._waiting.pop(cid, None)
        reply = slot[1]
        if reply is None:
            state = "exited" if not self.alive() else "did not answer"
            raise AgentError(f"agent {self.name} {state} (command {cid}); see {self.log_path}")
        if reply.get("event") == "error":
            raise AgentError(f"agent {self.name} refused {reply.get('cmd') or 'a command'}: {reply.get('reason')}")
        return reply.get("result", {})

    def call(self, cmd: dict, timeout_s: float = REPLY_TIMEOUT_S) -> dict:
        return self.wait_reply(self.send(cmd), timeout_s)

    def clock_offset(self, samples: int = 5) -> tuple[int, int]:
        """(offset, uncertainty) of the agent's monotonic clock against ours, ns.

        Offset = agent time - controller time at the same instant, taken from
        the sample with the shortest round trip; uncertainty is half of it.
        """
        best = None
        for _ in range(samples):
            t0 = self.clock.now_ns()
            r = self.call({"cmd": "time"})
            t1 = self.clock.now_ns()
            rtt = t1 - t0
            offset = int(r["monotonic_ns"]) - (t0 + t1) // 2
            if best is None or rtt < best[1] * 2:
                best = (offset, rtt // 2)
        return best

    # -- stopping ----------------------------------------------------------------

    def kill(self) -> None:
        """``kill -9``: the agent gets no chance to close anything."""
        if self.alive():
            self.exited_on_purpose = True
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close_pipes()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask for shutdown, then SIGTERM, then SIGKILL; never hangs."""
        if self.proc is None:
            return
        self.exited_on_purpose = True
        if self.alive():
            try:
                self.send({"cmd": "shutdown"})
            except AgentError:
                pass
            deadline = self.clock.now_ns() + int(timeout_s * 1e9)
            while self.alive() and self.clock.now_ns() < deadline:
                self.clock.sleep_until_ns(self.clock.now_ns() + 20_000_000)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not self.alive():
                    break
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
        self._close_pipes()
        if self._reader is not None:
            self._reader.join(2.0)

    def _close_pipes(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
