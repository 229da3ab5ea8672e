"""Why a convergence layer could not listen, in words: which port, which CL, and who holds it.

A bare ``OSError: [Errno 98]`` leaves an operator wiring a node by hand to
guess. Linux says who listens on a TCP port, best effort and without extra
privileges for one's own processes: ``/proc/net/tcp`` (and ``tcp6``) map the
port to a socket inode, and ``/proc/PID/fd`` links name the inode a process
holds. Anything unreadable (another user's process, no /proc) just leaves the
holder unknown.
"""

from __future__ import annotations

import errno
import os

from hilnet.errors import ClaError

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_MAX_CMDLINE = 120  # characters of the holder's command line worth showing


def listening_inodes(port: int, proc: str = "/proc") -> set[str]:
    """Socket inodes listening on TCP ``port`` (any address, IPv4 and IPv6)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, "net", table), encoding="ascii") as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == _LISTEN and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def port_holder(port: int, proc: str = "/proc") -> str | None:
    """``pid N (command line)`` of a process listening on TCP ``port``, or None if it cannot be told."""
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not targets:
        return None
    for pid in sorted((p for p in os.listdir(proc) if p.isdigit()), key=int):
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in targets:
                return f"pid {pid} ({_cmdline(proc, pid)})"
    return "a process this user cannot see"


def _cmdline(proc: str, pid: str) -> str:
    try:
        with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    return text if len(text) <= _MAX_CMDLINE else text[: _MAX_CMDLINE - 3] + "..."


def listen_error(cla: str, addr: tuple[str, int], exc: OSError) -> ClaError:
    """The error to report when convergence layer ``cla`` cannot listen on ``addr`` (host, port)."""
    host, port = addr
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        held = f"held by {holder}" if holder else "its holder unknown"
        return ClaError(
            f"{cla} cannot listen on {where}: TCP port {port} is already in use ({held}); "
            f"stop that program or give this {cla} another listen port"
        )
    if exc.errno == errno.EACCES:
        return ClaError(f"{cla} cannot listen on {where}: ports below 1024 need root (or CAP_NET_BIND_SERVICE)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ClaError(f"{cla} cannot listen on {where}: {host} is not an address of this host")
    return ClaError(f"{cla} cannot listen on {where}: {exc.strerror or exc}")
