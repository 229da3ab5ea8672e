"""One board over the system OpenSSH client: a multiplexed master connection and commands through it.

The user's keys, agent and ``~/.ssh/config`` apply (or the bench's
``ssh-config`` file, passed with ``-F``). ``BatchMode=yes``: ssh never
prompts, it fails and says why. One master connection per board
(``ControlMaster``) carries every command and the agent's session, so a run
opens one TCP connection per board and a command costs no handshake. Remote
commands are argument lists joined with :func:`shlex.join`: nothing from a
bench file reaches the remote shell unquoted.

The master is our own child process (``ssh -M -N``), never a daemonised
``ControlPersist`` one, so teardown knows exactly what to stop. Commands use
``ControlMaster=no``: once the master is gone (the board vanished) they fail
at once instead of dialling again.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from hilnet.clock import NS_PER_S, Clock, MonotonicClock
from hilnet.errors import TestbedError

CONNECT_TIMEOUT_S = 8
# A board that stops answering (power, cable) is noticed after about
# ALIVE_INTERVAL_S * ALIVE_COUNT seconds; a dead sshd at once (the TCP connection closes).
ALIVE_INTERVAL_S = 2
ALIVE_COUNT = 3
COMMAND_TIMEOUT_S = 30.0
MASTER_POLL_NS = 50_000_000  # how often connect() looks whether the master is up


def control_dir() -> str:
    """A private directory for the master sockets (short: a socket path is at most 107 bytes)."""
    return tempfile.mkdtemp(prefix="hilnet-ssh-", dir="/tmp")


def remote_path(path: str) -> str:
    """A board path as the remote shell must see it: ``~/x`` becomes ``x`` (the session starts in the home)."""
    return path[2:] if path.startswith("~/") else path


class SshBoard:
    """SSH to one board: ``connect`` the master, ``run``/``command`` through it, ``close``."""

    def __init__(
        self, name: str, destination: str, sockets: str, config: str | None = None, clock: Clock | None = None
    ):
        self.name = name
        self.clock: Clock = clock or MonotonicClock()
        self.destination = destination
        self.config = config
        self.control_path = os.path.join(sockets, name)  # board names are plain names
        self.master: subprocess.Popen[bytes] | None = None

    def options(self, master: bool = False) -> list[str]:
        opts = ["ssh"]
        if self.config:
            opts += ["-F", self.config]
        opts += [
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
            "-o", f"ServerAliveInterval={ALIVE_INTERVAL_S}",
            "-o", f"ServerAliveCountMax={ALIVE_COUNT}",
            "-o", f"ControlPath={self.control_path}",
            "-o", "ControlMaster=yes" if master else "ControlMaster=no",
        ]  # fmt: skip
        if master:
            opts += ["-o", "ControlPersist=no", "-N"]
        return opts

    def command(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs ``argv`` on the board through the master connection."""
        return [*self.options(), "--", self.destination, shlex.join(argv)]

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S + 4) -> None:
        """Open the master connection; TestbedError naming the board and ssh's own words when it cannot."""
        if self.alive():
            return
        if shutil.which("ssh") is None:
            raise TestbedError("the OpenSSH client (ssh) is not installed on this host; install openssh-client")
        self.master = subprocess.Popen(
            [*self.options(master=True), "--", self.destination],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = self.clock.now_ns() + int(timeout_s * NS_PER_S)
        while self.clock.now_ns() < deadline:
            if self.master.poll() is not None:
                err = (self.master.stderr.read() if self.master.stderr else b"").decode(errors="replace").strip()
                self.master = None
                raise TestbedError(
                    f"board {self.name}: cannot reach {self.destination} over SSH: {err or 'ssh failed'}"
                )
            if self._check():
                return
            self.clock.sleep_until_ns(self.clock.now_ns() + MASTER_POLL_NS)
        self.close()
        raise TestbedError(f"board {self.name}: {self.destination} did not answer over SSH within {timeout_s:.0f} s")

    def _check(self) -> bool:
        p = subprocess.run(
            [*self.options(), "-O", "check", "--", self.destination], capture_output=True, timeout=COMMAND_TIMEOUT_S
        )
        return p.returncode == 0

    def alive(self) -> bool:
        return self.master is not None and self.master.poll() is None

    def run(
        self, argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S, data: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` on the board; TestbedError when ssh cannot (status 255) or it takes too long."""
        if not self.alive():
            raise TestbedError(f"board {self.name}: no SSH connection to {self.destination}")
        try:
            p = subprocess.run(self.command(argv), input=data, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TestbedError(f"board {self.name}: `{shlex.join(argv)}` took over {timeout_s:.0f} s") from None
        if p.returncode == 255:
            err = p.stderr.decode(errors="replace").strip()
            raise TestbedError(f"board {self.name}: SSH to {self.destination} failed: {err or 'connection lost'}")
        return p

    def close(self) -> None:
        """Stop the master connection (and with it every session still on it). Never raises."""
        master, self.master = self.master, None
        if master is None:
            return
        if master.poll() is None:
            try:
                subprocess.run([*self.options(), "-O", "exit", "--", self.destination], capture_output=True, timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            try:
                master.wait(3)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
        if master.stderr:
            master.stderr.close()
