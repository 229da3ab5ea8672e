"""Agent hosts, the controller's side: many nodes' agents in one ``hilnet agent --host`` process.

A :class:`HostProcess` is one host subprocess and its tagged JSON lines
(:mod:`hilnet.agent.host`); its reader thread hands each line to the
:class:`HostedAgent` it names. A HostedAgent presents one hosted node with
the surface of :class:`~hilnet.stacks.agent_process.AgentProcess` (start,
call/send, events, kill, stop), so the session, sequencer and teardown drive
it as they drive an agent process: replies are matched by id, events go to
``on_event`` with the node's name. ``kill`` asks the host to kill that one
node as ``kill -9`` would and returns once the host says it is done, after
every line the node wrote before; the host lives on with the other nodes.
The host process stops when its last node has stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from hilnet.agent.cla.limits import raise_descriptor_limit
from hilnet.agent.protocol import Command, Event, Shutdown, encode_command, read_lines_sync
from hilnet.agent.shared_plan import PlanSplicer
from hilnet.clock import Clock
from hilnet.errors import AgentError
from hilnet.stacks.agent_process import AgentProcess

__all__ = ["HostProcess", "HostedAgent", "hosted_agents", "raise_descriptor_limit"]

KILL_WAIT_S = 10.0  # for the host to report a kill done; a host that does not answer is itself killed


class HostProcess:
    """One ``hilnet agent --host`` subprocess: starts on first use, stops when its last node has stopped."""

    def __init__(self, name: str, log_path: str, listen: Sequence[socket.socket] = ()):
        self.name = name
        self.log_path = log_path
        self.argv = [sys.executable, "-m", "hilnet", "agent", "--host"]
        # Listen ports held bound for its nodes: the host inherits the sockets themselves.
        self.listen = list(listen)
        for sock in self.listen:
            host, port = sock.getsockname()[:2]
            self.argv.append(f"--listen-fd={sock.fileno()}={host}:{port}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.nodes: dict[str, HostedAgent] = {}
        self.plan = PlanSplicer(encode_command)  # every node's configure carries the same plan
        self._wlock = threading.Lock()
        self._reader: threading.Thread | None = None

    def ensure_started(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is not None:
                raise AgentError(f"agent host {self.name} exited (status {self.proc.returncode}); see {self.log_path}")
            return
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                    pass_fds=[s.fileno() for s in self.listen],
                )
            except OSError as e:
                raise AgentError(f"agent host {self.name}: cannot start {self.argv[0]}: {e.strerror}") from None
        self._reader = threading.Thread(target=self._read, args=(self.proc,), name=f"host-{self.name}", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def write(self, node: str, payload: bytes) -> None:
        """Write ``NODE PAYLOAD`` (one line); AgentError when the host cannot take it."""
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is None or not self.alive():
            raise AgentError(f"agent host {self.name} is not running (exit status {self.returncode()})")
        line = node.encode() + b" " + payload + (b"" if payload.endswith(b"\n") else b"\n")
        try:
            with self._wlock:
                stdin.write(line)
                stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise AgentError(f"agent host {self.name} closed its input; see {self.log_path}") from None

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdout is None:
            return
        lines = read_lines_sync(proc.stdout)
        while True:
            try:
                raw = next(lines)
            except (StopIteration, ValueError, OSError):  # EOF, or the pipe closed under us
                break
            name, _, payload = raw.partition(b" ")
            node = self.nodes.get(name.decode("utf-8", "replace"))
            if node is None:
                continue  # a node of this host the controller does not drive: nothing waits for it
            if payload.startswith(b"{"):
                node._take(payload)
            else:
                node._gone_word(payload.strip().decode("ascii", "replace"))
        for node in list(self.nodes.values()):
            node._gone_word("host-exited")

    def release(self) -> None:
        """Stop the process once none of its nodes runs any more."""
        if not any(n.alive() for n in self.nodes.values()):
            self.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """End of input (every node left stops cleanly), then SIGTERM, then SIGKILL; never hangs."""
        proc = self.proc
        if proc is None:
            return
        for f in (proc.stdin,):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
            try:
                proc.wait(timeout_s if sig is None else 2.0)
                break
            except subprocess.TimeoutExpired:
                continue
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        if proc.stdout is not None:
            proc.stdout.close()


class HostedAgent(AgentProcess):
    """One node in a :class:`HostProcess`, driven like an agent process of its own."""

    def __init__(
        self,
        name: str,
        host: HostProcess,
        clock: Clock,
        on_event: Callable[[str, Event], None],
        on_unreadable: Callable[[str, str], None],
    ):
        super().__init__(name, (), host.log_path, clock, on_event, on_unreadable)
        self.argv = [*host.argv, f"({name})"]
        self.host = host
        self._running = False
        self._gone = threading.Event()
        self._last_word = ""
        host.nodes[name] = self

    def start(self) -> None:
        self.host.ensure_started()
        self.proc = self.host.proc
        self._ready.clear()
        self._gone.clear()
        self.exited_on_purpose = False
        self._running = True
        try:
            self.host.write(self.name, b"start")
        except AgentError:
            self._running = False
            raise

    def alive(self) -> bool:
        return self._running and self.host.alive()

    def returncode(self) -> int | None:
        if self.alive():
            return None
        rc = self.host.returncode()
        if rc is not None:
            return rc
        return -signal.SIGKILL if self._last_word == "killed" else 0

    def exit_cause(self) -> str:
        rc = self.host.returncode()
        if rc is not None:
            return f"ended with its agent host {self.host.name}, which exited (status {rc})"
        return f"exited on its own ({self._last_word or 'no word from its host'})"

    def _encode(self, command: Command) -> bytes:
        return self.host.plan.encode(command)

    def _write(self, line: bytes) -> None:
        if not self.alive():
            raise AgentError(f"agent {self.name} is not running (exit status {self.returncode()})")
        self.host.write(self.name, line)

    def _gone_word(self, word: str) -> None:
        """The host says this node runs no more (``killed``, ``exited``, ``unknown``; or the host ended)."""
        self._last_word = word
        self._running = False
        self._ended()
        self._gone.set()

    def kill(self) -> None:
        """``kill -9`` this node alone; returns after every line it wrote before it died was taken."""
        if not self.alive():
            return
        self.exited_on_purpose = True
        try:
            self.host.write(self.name, b"kill")
        except AgentError:
            pass
        if not self._gone.wait(KILL_WAIT_S):
            self.host.close(0.0)  # a host that cannot kill one of its nodes is taken down whole
        self._running = False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask for shutdown, then kill; never hangs. The host stops after its last node."""
        self.exited_on_purpose = True
        if self.alive():
            try:
                self.send(Shutdown())
            except AgentError:
                pass
            if not self._gone.wait(timeout_s):
                self.kill()
        self._running = False
        self.host.release()


def hosted_agents(
    hosts: Mapping[str, Sequence[str]],
    log_dir: str,
    clock: Clock,
    on_event: Callable[[str, Event], None],
    on_unreadable: Callable[[str, str], None],
    listen_sockets: Callable[[str], list[socket.socket]] = lambda node: [],
) -> tuple[list[HostProcess], dict[str, HostedAgent]]:
    """One HostProcess per entry of ``hosts`` (host name -> its nodes), and a HostedAgent per node.

    ``listen_sockets(node)``: the sockets holding the node's listen ports bound; the
    node's host process inherits them (hilnet/testbed/loopback.py)."""
    processes: list[HostProcess] = []
    agents: dict[str, HostedAgent] = {}
    for host_name, nodes in hosts.items():
        held = [s for n in nodes for s in listen_sockets(n)]
        host = HostProcess(host_name, os.path.join(log_dir, f"{host_name}.log"), held)
        processes.append(host)
        for node in nodes:
            agents[node] = HostedAgent(node, host, clock, on_event, on_unreadable)
    return processes, agents
