"""A home for one ION node: its own IPC namespace and ``/dev/shm``, inside the node's network namespace.

ION keeps its state in SysV shared memory and its locks in POSIX named
semaphores, which live in ``/dev/shm`` as files (``sem.ion:GLOBAL:0``): two
ION nodes on one host share both unless each has its own. So each node gets
a *holder*, a small process started as::

    ip netns exec NS unshare --ipc --mount --propagation private \\
        sh -c 'mount -t tmpfs hilnet-ion /dev/shm && exec sleep infinity'

and every ION program of the node then runs in the holder's namespaces
(``nsenter --target HOLDER --ipc --net --mount``). A crash (:meth:`kill_all`)
kill -9s every process of that IPC namespace, holder included: the
namespaces, ION's shared memory and its semaphores go with them, as they
would with a reboot. What is left is ION's SDR file in the node's folder,
which is what ION starts again on.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from hilnet.errors import StackError

SHM_SIZE = "64m"  # ION's semaphores are small files; its shared memory is SysV, not here
# ION 4.1.3's tcpcli connects to a neighbour inside an SDR transaction
# (bpv7/tcp/tcpcli.c, rescanPlans -> beginSessionForDuct), so while a connect
# waits for an answer the whole node waits. An emulated outage drops the SYNs:
# with Linux's default 6 retries that is ~2 minutes of a frozen node. One retry
# (~3 s) is what ION's own TCPCL_LOW_CYCLE build option sets; the setting is the
# node's network namespace's own.
SYN_RETRIES = 1


class IonNamespace:
    """The holder of one node's namespaces; ``netns`` None runs in the host's network namespace."""

    def __init__(self, node: str, netns: str | None, env: Mapping[str, str]):
        self.node = node
        self.netns = netns
        self.env = dict(env)
        self.holder: subprocess.Popen[bytes] | None = None
        self._ipc: str | None = None  # the holder's IPC namespace, as /proc names it

    def start(self) -> None:
        inner = [
            "unshare",
            "--ipc",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs -o size={SHM_SIZE} hilnet-ion /dev/shm && echo up && exec sleep infinity",
        ]
        argv = (["ip", "netns", "exec", self.netns] if self.netns else []) + inner
        try:
            self.holder = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
            )
        except OSError as e:
            raise StackError(f"ION node {self.node}: cannot start {argv[0]}: {e.strerror}") from None
        out = self.holder.stdout
        if out is None:  # stdout=PIPE always gives one: this only tells the type checker
            raise StackError(f"ION node {self.node}: no pipe from its namespace holder")
        line = out.readline()  # "up" once /dev/shm is its own
        if line.strip() != b"up":
            err = self.holder.stderr.read().decode(errors="replace").strip() if self.holder.stderr else ""
            self.holder.wait()
            raise StackError(f"ION node {self.node}: cannot make its own IPC namespace: {err or 'no answer'}")
        self._ipc = os.readlink(f"/proc/{self.holder.pid}/ns/ipc")
        if self.netns:
            # /proc/sys/net is the writer's network namespace's (no sysctl binary needed)
            write = f"echo {SYN_RETRIES} > /proc/sys/net/ipv4/tcp_syn_retries"
            p = subprocess.run(self.command(["sh", "-c", write], "/"), capture_output=True, text=True)
            if p.returncode != 0:
                raise StackError(f"ION node {self.node}: cannot set tcp_syn_retries: {p.stderr.strip()}")

    def alive(self) -> bool:
        return self.holder is not None and self.holder.poll() is None

    def command(self, argv: Sequence[str], cwd: str) -> list[str]:
        """``argv`` as run inside the node's namespaces, in folder ``cwd``."""
        if self.holder is None:
            raise StackError(f"ION node {self.node} is not running")
        return ["nsenter", "--target", str(self.holder.pid), "--ipc", "--net", "--mount", f"--wd={cwd}", *argv]

    def run(
        self, argv: Sequence[str], cwd: str, timeout_s: float | None, stdout: int | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one ION program to its end (``timeout_s`` None: however long it takes); ``stdout`` None captures it."""
        try:
            return subprocess.run(
                self.command(argv, cwd),
                env=self.env,
                cwd=cwd,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"ION node {self.node}: {argv[0]} did not finish within {timeout_s} s") from None

    def spawn(self, argv: Sequence[str], cwd: str, stdout: int) -> subprocess.Popen[bytes]:
        """Start a long-running ION program (bprecvfile) in the node's namespaces."""
        return subprocess.Popen(
            self.command(argv, cwd),
            env=self.env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        """Every process in the node's IPC namespace (the holder and all of ION)."""
        if self._ipc is None:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/ipc") == self._ipc:
                        found.append(int(entry))
                except OSError:
                    continue  # gone meanwhile
        return found

    def running(self, name: str) -> bool:
        """Whether a process called ``name`` runs in the node's IPC namespace."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        return True
            except OSError:
                continue
        return False

    def kill_all(self) -> None:
        """kill -9 everything in the namespace; the namespace goes with its last process."""
        for _ in range(5):  # a daemon may fork while we look: look again until none is left
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.holder is not None:
            try:
                self.holder.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._ipc = None
