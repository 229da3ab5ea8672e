"""Real ION 4.1.3 nodes for interop tests, each in its own IPC namespace, on 127.0.0.1 with its own ports.

ION keeps its state in SysV shared memory and its locks in POSIX semaphores
under ``/dev/shm``: two nodes on one host collide unless each has its own.
So every node gets a *holder* process (``unshare --ipc --mount`` with a
private tmpfs on ``/dev/shm``) and each ION program of the node runs in the
holder's namespaces through ``nsenter``. :meth:`IonNode.stop` stops the
node's daemons and then kill -9s whatever is left in that IPC namespace, by
pid, holder included, so nothing of ION outlives a test and nothing else is touched.

The rc files are minimal and written here, for tests only: one ``tcp``
(TCPCLv3) induct, one plan per neighbour through a TCP address, and the
contacts and ranges ION's contact graph routing needs (all up for an hour).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from hilnet.stacks.ion_install import IonInstall

APP = 1  # the service ION applications receive on (ipn:N.1)
SEND = 2  # the service bpsendfile sends from (ipn:N.2)
ADMIN_TIMEOUT_S = 60


class IonNode:
    """ION node ``number`` in ``folder``: TCPCLv3 induct on ``port``; ``plans`` node -> ``host:port`` to reach it.

    ``contacts`` are ``(from, to)`` node pairs (both directions must be given)
    that CGR may use, each up for an hour from the start at 1 MB/s, 1 s light time;
    ``(from, to, start_s)`` begins ``start_s`` after the node loads its contact plan.
    """

    def __init__(
        self,
        ion: IonInstall,
        folder: Path,
        number: int,
        port: int,
        plans: Mapping[int, str],
        contacts: Sequence[tuple[int, int] | tuple[int, int, int]],
    ):
        self.ion = ion
        self.folder = folder
        self.number = number
        self.port = port
        self.plans = dict(plans)
        self.contacts = list(contacts)
        self.env = ion.env()
        self.holder: subprocess.Popen[bytes] | None = None
        self._ipc: str | None = None
        self._receivers: list[subprocess.Popen[bytes]] = []

    @property
    def eid(self) -> str:
        return f"ipn:{self.number}.0"

    def app_eid(self, number: int | None = None) -> str:
        return f"ipn:{self.number if number is None else number}.{APP}"

    # --- life ----------------------------------------------------------------------

    def start(self) -> float:
        """Start the node; returns when (time.monotonic) just before its contact plan was loaded."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_rc()
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--ipc",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs -o size=64m ion-test /dev/shm && echo up && exec sleep infinity",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"up":
            raise RuntimeError(f"ION node {self.number}: no IPC namespace: {self.holder.stderr.read()!r}")  # type: ignore[union-attr]
        self._ipc = os.readlink(f"/proc/{self.holder.pid}/ns/ipc")
        loaded = time.monotonic()
        for admin, rc in (("ionadmin", "node.ionrc"), ("bpadmin", "node.bprc"), ("ipnadmin", "node.ipnrc")):
            p = self.run([admin, rc], timeout_s=ADMIN_TIMEOUT_S)
            if p.returncode != 0:
                raise RuntimeError(f"ION node {self.number}: {admin} {rc} failed: {p.stdout!r}")
        return loaded

    def stop(self) -> None:
        """Stop BP and ION of this node, then kill -9 every process left in its IPC namespace (holder included).

        Not ``ionstop``: it ends in ``killm``, which kills ION programs by name on the
        whole machine, other nodes and other people's included.
        """
        if self.holder is None:
            return
        for r in self._receivers:
            if r.poll() is None:
                r.kill()
        for admin in ("bpadmin", "ionadmin"):  # "." stops this node's daemons, through its own IPC namespace
            try:
                self.run([admin, "."], timeout_s=20)
            except subprocess.TimeoutExpired:
                break
        self.kill_all()
        self.holder = None

    def kill_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.holder is not None:
            self.holder.wait(timeout=10)
        for r in self._receivers:
            r.wait(timeout=10)

    def pids(self) -> list[int]:
        """Every process in this node's IPC namespace."""
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/ipc") == self._ipc:
                        out.append(int(entry))
                except OSError:
                    pass
        return out

    # --- programs --------------------------------------------------------------------

    def command(self, argv: Sequence[str]) -> list[str]:
        assert self.holder is not None, "node not started"
        return ["nsenter", "--target", str(self.holder.pid), "--ipc", "--mount", f"--wd={self.folder}", *argv]

    def run(self, argv: Sequence[str], timeout_s: float = ADMIN_TIMEOUT_S) -> subprocess.CompletedProcess[bytes]:
        """Run one ION program to its end; its output goes to ``admin.log`` (not a pipe: the
        daemons an admin program starts keep its output open, and a pipe would never end)."""
        log = self.folder / "admin.log"
        start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            p = subprocess.run(
                self.command(argv), env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout_s
            )
        with open(log, "rb") as f:
            f.seek(start)
            p.stdout = f.read()
        return p

    def send_file(self, path: Path, dest: str, cos: str = "0.1", ttl_s: int = 600) -> None:
        """``bpsendfile`` from ``ipn:N.2``; ``cos`` as ION writes it: custody.priority[.ordinal]."""
        p = self.run(["bpsendfile", f"ipn:{self.number}.{SEND}", dest, str(path), cos, str(ttl_s)])
        if p.returncode != 0:
            raise RuntimeError(f"bpsendfile on node {self.number} failed: {p.stdout!r}")

    def receive_files(self, count: int) -> Path:
        """Start ``bprecvfile ipn:N.1 count`` in a folder of its own; returns the folder (testfile1, 2...)."""
        where = self.folder / f"recv{len(self._receivers)}"
        where.mkdir()
        argv = self.command(["bprecvfile", self.app_eid(), str(count)])
        argv[argv.index(f"--wd={self.folder}")] = f"--wd={where}"
        self._receivers.append(
            subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where)
        )
        return where

    def wait_received(self, where: Path, count: int, timeout_s: float) -> list[str]:
        """The SHA-256 of each file bprecvfile wrote, in arrival order, once it has all ``count`` (it then exits)."""
        proc = self._receivers[int(where.name.removeprefix("recv"))]
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            got = sorted(p.name for p in where.iterdir())
            raise AssertionError(f"node {self.number} received {got} of {count} files; log:\n{self.log()}") from None
        return [hashlib.sha256((where / f"testfile{i}").read_bytes()).hexdigest() for i in range(1, count + 1)]

    def wait_digests(self, where: Path, want: set[str], timeout_s: float) -> list[str]:
        """Poll ``where`` until the SHA-256 of its files include ``want``; the digests of all of them then.

        For a receiver started with count 0 (no limit): ION delivers a bundle it got twice
        twice (it keeps no record of what it delivered), so counting files is not enough.
        """
        end = time.monotonic() + timeout_s
        while True:
            got = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(where.glob("testfile*"))]
            if want <= set(got):
                return got
            if time.monotonic() > end:
                raise AssertionError(f"node {self.number} has {len(got)} files, not all wanted; log:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.folder / "ion.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no ion.log)"

    # --- configuration ---------------------------------------------------------------

    def _write_rc(self) -> None:
        n = self.number
        (self.folder / "ion.cfg").write_text("wmSize 20000000\nheapWords 4000000\n")
        ionrc = [f"1 {n} ion.cfg", "s", "m horizon +0"]
        for frm, to, *start in self.contacts:
            at = start[0] if start else 0
            ionrc += [f"a contact +{at} +3600 {frm} {to} 1000000", f"a range +0 +3600 {frm} {to} 1"]
        (self.folder / "node.ionrc").write_text("\n".join(ionrc) + "\n")
        bprc = [
            "1",
            "a scheme ipn 'ipnfw' 'ipnadminep'",
            f"a endpoint ipn:{n}.{APP} q",
            f"a endpoint ipn:{n}.{SEND} q",
            "a protocol tcp",
            f"a induct tcp 127.0.0.1:{self.port} tcpcli",
        ]
        bprc += [f"a outduct tcp {addr} tcpclo" for addr in self.plans.values()]
        (self.folder / "node.bprc").write_text("\n".join([*bprc, "s"]) + "\n")
        ipnrc = [f"a plan {node} tcp/{addr}" for node, addr in self.plans.items()]
        (self.folder / "node.ipnrc").write_text("\n".join(ipnrc) + "\n")


def wait_until(cond, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
