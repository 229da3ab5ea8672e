"""One hilnet agent process and its control channel: start, command, crash, stop.

``hilnet agent --stdio`` runs as a subprocess: this Python behind
``argv_prefix`` (nothing, or ``ip netns exec NS``), or the whole ``command`` a
backend gives (``ssh board .../bin/hilnet agent --stdio``; its
``kill_command`` then kills the agent where it runs). Commands go out as typed
:class:`~hilnet.agent.control.Command` values (``encode_command``); a reader
thread turns each line the agent writes into a typed
:class:`~hilnet.agent.events.Event` (``parse_event``) for ``on_event``.
Replies are matched by id to the command that asked: a caller either waits
for its reply (:meth:`AgentProcess.call`) or leaves a callback that the
reader thread runs when the reply comes (:meth:`AgentProcess.send`), so a
run with hundreds of injections needs no thread per injection. The run's
driver for a hilnet node (:mod:`hilnet.stacks.hilnet_agent`) is built on it;
tests and benchmarks use it directly.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from hilnet.agent.protocol import (
    MAX_LINE,
    Command,
    Error,
    Event,
    OversizeLine,
    Ready,
    Reply,
    Shutdown,
    Time,
    encode_command,
    parse_event,
    read_lines_sync,
)
from hilnet.clock import Clock
from hilnet.errors import AgentError, ControlError

READY_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 20.0
NS_PER_S = 1_000_000_000

# What a command's callback gets: the reply's result, or why there is none.
Outcome = Mapping[str, Any] | AgentError
OnReply = Callable[[Outcome], None]


@dataclass
class _Pending:
    """A command sent and not yet answered."""

    deadline_ns: int  # on the agent's driver clock; a callback past it gets "did not answer"
    on_reply: OnReply | None  # None: a caller waits on ``done``
    done: threading.Event = field(default_factory=threading.Event)
    answer: Reply | Error | None = None


class AgentProcess:
    """One agent subprocess and its JSON-lines control channel.

    ``on_event(node, event)`` gets every event but replies (errors too);
    ``on_unreadable(node, message)`` gets a line that is not an event.
    Both run on the reader thread, as do reply callbacks.
    """

    def __init__(
        self,
        name: str,
        argv_prefix: tuple[str, ...],
        log_path: str,
        clock: Clock,
        on_event: Callable[[str, Event], None],
        on_unreadable: Callable[[str, str], None],
        *,
        command: Sequence[str] | None = None,
        kill_command: Callable[[int], list[str]] | None = None,
        where: str = "",
    ):
        self.name = name
        self.argv = list(command) if command else [*argv_prefix, sys.executable, "-m", "hilnet", "agent", "--stdio"]
        self.kill_command = kill_command
        self.where = where  # "board B (ssh DEST)" for an agent on a board
        self.agent_pid: int | None = None  # as the agent reported it (its own host's pid)
        self.log_path = log_path
        self.clock = clock
        self.on_event = on_event
        self.on_unreadable = on_unreadable
        self.proc: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Pending] = {}
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

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdout is None:  # started without a pipe: nothing to read
            return
        lines = read_lines_sync(proc.stdout)  # bounded: an oversize line is discarded, not held
        while True:
            try:
                raw = next(lines)
            except (StopIteration, ValueError, OSError):  # EOF, or the pipe closed under us (stop)
                break
            self._take(raw)
        self._ended()

    def _take(self, raw: bytes) -> None:
        """One line the agent wrote: a reply for whoever waits for it, or an event for ``on_event``."""
        try:
            if isinstance(raw, OversizeLine):
                raise ControlError(f"line is longer than {MAX_LINE} bytes")
            ev = parse_event(raw)
        except ControlError:
            self.on_unreadable(self.name, f"unreadable line from agent: {raw[:200]!r}")
            return
        if isinstance(ev, Ready):
            self.agent_pid = ev.pid
            self._ready.set()
        if isinstance(ev, (Reply, Error)) and isinstance(ev.id, int) and self._answer(ev.id, ev):
            if isinstance(ev, Reply):
                return
        self.on_event(self.name, ev)

    def _ended(self) -> None:
        """The agent writes no more: this incarnation answers nothing more."""
        with self._lock:
            waiting = list(self._waiting)
        for cid in waiting:
            self._answer(cid, None)

    def _answer(self, cid: int, answer: Reply | Error | None) -> bool:
        """Hand ``answer`` (None: none will come) to whoever waits for command ``cid``; False if nobody does."""
        with self._lock:
            slot = self._waiting.get(cid)
            if slot is None:
                return False
            if slot.on_reply is not None:
                del self._waiting[cid]
        if slot.on_reply is not None:
            slot.on_reply(self._outcome(cid, answer))
        else:
            slot.answer = answer
            slot.done.set()
        return True

    def _outcome(self, cid: int, answer: Reply | Error | None) -> Outcome:
        if answer is None:
            state = "exited" if not self.alive() else "did not answer"
            return AgentError(f"agent {self.name} {state} (command {cid}); see {self.log_path}")
        if isinstance(answer, Error):
            return AgentError(f"agent {self.name} refused {answer.cmd or 'a command'}: {answer.reason}")
        return answer.result

    # -- commands ----------------------------------------------------------------

    def send(self, command: Command, on_reply: OnReply | None = None, timeout_s: float = REPLY_TIMEOUT_S) -> int:
        """Write one command; returns its id.

        With ``on_reply``, the reader thread calls it with the reply's result, or
        with an :class:`AgentError` when the agent refuses, exits, or has not
        answered ``timeout_s`` after sending (see :meth:`expire_overdue`).
        Raises AgentError at once when the command cannot be written.
        """
        cid = next(self._ids)
        line = self._encode(dataclasses.replace(command, id=cid))
        with self._lock:
            self._waiting[cid] = _Pending(self.clock.now_ns() + int(timeout_s * NS_PER_S), on_reply)
        try:
            self._write(line)
        except AgentError:
            with self._lock:
                self._waiting.pop(cid, None)
            raise
        return cid

    def _encode(self, command: Command) -> bytes:
        return encode_command(command)

    def _write(self, line: bytes) -> None:
        stdin: IO[bytes] | None = self.proc.stdin if self.proc is not None else None
        if stdin is None or not self.alive():
            raise AgentError(f"agent {self.name} is not running (exit status {self.returncode()})")
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise AgentError(f"agent {self.name} closed its control channel; see {self.log_path}") from None

    def expire_overdue(self) -> None:
        """Fail every callback command still unanswered past its deadline ("did not answer")."""
        now = self.clock.now_ns()
        with self._lock:
            overdue = [cid for cid, s in self._waiting.items() if s.on_reply is not None and s.deadline_ns <= now]
        for cid in overdue:
            self._answer(cid, None)

    def wait_reply(self, cid: int, timeout_s: float = REPLY_TIMEOUT_S) -> Mapping[str, Any]:
        with self._lock:
            slot = self._waiting.get(cid)
        if slot is None or slot.on_reply is not None:
            raise AgentError(f"agent {self.name}: no command {cid} pending")
        slot.done.wait(timeout_s)
        with self._lock:
            self._waiting.pop(cid, None)
        outcome = self._outcome(cid, slot.answer)
        if isinstance(outcome, AgentError):
            raise outcome
        return outcome

    def call(self, command: Command, timeout_s: float = REPLY_TIMEOUT_S) -> Mapping[str, Any]:
        return self.wait_reply(self.send(command), timeout_s)

    def clock_offset(self, samples: int = 5) -> tuple[int, int]:
        """(offset, uncertainty) of the agent's monotonic clock against ours, ns.

        Offset = agent time - controller time at the same instant, taken from
        the sample with the shortest round trip; uncertainty is half of it.
        """
        best: tuple[int, int] | None = None
        for _ in range(samples):
            t0 = self.clock.now_ns()
            r = self.call(Time())
            t1 = self.clock.now_ns()
            rtt = t1 - t0
            offset = int(r["monotonic_ns"]) - (t0 + t1) // 2
            if best is None or rtt < best[1] * 2:
                best = (offset, rtt // 2)
        if best is None:
            raise AgentError(f"agent {self.name}: no clock sample taken")
        return best

    # -- stopping ----------------------------------------------------------------

    def exit_cause(self) -> str:
        """Why the agent process ended, in words: for a board, ssh's 255 means the board went away."""
        rc = self.returncode()
        if self.where and rc == 255:
            return f"on {self.where}: the board stopped answering over SSH (ssh exit 255)"
        if self.where:
            return f"on {self.where} exited on its own (status {rc})"
        return f"exited on its own (status {rc})"

    def kill(self) -> None:
        """``kill -9``: the agent gets no chance to close anything."""
        if self.proc is not None and self.alive() and self.kill_command is not None and self.agent_pid:
            self.exited_on_purpose = True
            self._kill_remote(self.proc, self.kill_command(self.agent_pid))
        if self.proc is not None and self.alive():
            self.exited_on_purpose = True
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(2.0)  # what the agent wrote before it died is still to be read
        self._close_pipes()

    def _kill_remote(self, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        # kill -9 where the agent runs (``argv``); its SSH session then ends on its
        # own. A board that does not answer is left to the local signal that follows.
        try:
            subprocess.run(argv, capture_output=True, timeout=10)
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask for shutdown, then SIGTERM, then SIGKILL; never hangs."""
        if self.proc is None:
            return
        self.exited_on_purpose = True
        if self.alive():
            try:
                self.send(Shutdown())
            except AgentError:
                pass
            deadline = self.clock.now_ns() + int(timeout_s * NS_PER_S)
            while self.alive() and self.clock.now_ns() < deadline:
                self.clock.sleep_until_ns(self.clock.now_ns() + 20_000_000)
            self._signal_until_gone(self.proc)
        self._close_pipes()
        if self._reader is not None:
            self._reader.join(2.0)

    def _signal_until_gone(self, proc: subprocess.Popen[bytes]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pass

    def _close_pipes(self) -> None:
        if self.proc is None:
            return
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
