"""The agent's local control socket: who may own its directory, what it may replace, who may talk.

Whoever can write to the socket's directory can swap the socket for their own
and read every bundle ``hilnet send`` posts, so before the agent binds and
before a client connects, every directory from the socket's up to ``/`` must
belong to this user or root and be writable by nobody else (a root-owned sticky
directory such as ``/tmp`` is fine: others can add names there, not take ours).
The agent creates missing directories 0700, replaces only a stale socket (a
socket file nobody listens on), and serves only connecting processes of its own
uid or root (``SO_PEERCRED``): root may read any file of the user anyway.
A client checks the same directories and that the socket and the process
behind it belong to this user or root.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct

from hilnet.errors import AgentError, NoAgentError

ROOT_UID = 0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def default_socket_path(node: str, runtime_dir: str | None = None, tmp: str = "/tmp") -> str:
    """Where ``hilnet send``/``recv`` look for the agent of ``node``.

    ``$XDG_RUNTIME_DIR/hilnet/NODE.sock`` (``runtime_dir`` overrides the
    environment), else ``TMP/hilnet-UID/hilnet/NODE.sock``.
    """
    base = runtime_dir or os.environ.get("XDG_RUNTIME_DIR") or os.path.join(tmp, f"hilnet-{os.getuid()}")
    return os.path.join(base, "hilnet", f"{node}.sock")


def _allowed_owner(uid: int) -> bool:
    return uid in (os.getuid(), ROOT_UID)


def dir_problem(path: str, st: os.stat_result) -> str | None:
    """Why directory ``path`` (with ``st`` its lstat) must not hold the socket, or None."""
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not _allowed_owner(st.st_uid):
        return f"owned by uid {st.st_uid}, not by this user (uid {os.getuid()}) or root"
    shared_but_safe = st.st_uid == ROOT_UID and st.st_mode & stat.S_ISVTX  # /tmp
    if st.st_mode & stat.S_IWOTH and not shared_but_safe:
        return f"writable by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_mode & stat.S_IWGRP and not shared_but_safe:
        return f"writable by its group (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check_socket_dirs(sock_path: str) -> None:
    """Raise AgentError naming the first directory above ``sock_path`` that another user could change."""
    d = os.path.realpath(os.path.dirname(os.path.abspath(sock_path)))
    while True:
        try:
            problem = dir_problem(d, os.lstat(d))
        except OSError as e:
            problem = f"not readable ({e.strerror})"
        if problem is not None:
            raise AgentError(
                f"control socket directory {d} is {problem}: another user could swap the socket "
                f"{sock_path} and read what is sent through it; remove or fix {d}, or give --socket PATH elsewhere"
            )
        parent = os.path.dirname(d)
        if parent == d:
            return
        d = parent


def make_private_dirs(sock_path: str) -> None:
    """Create the missing directories above ``sock_path``, each 0700."""
    d = os.path.dirname(os.path.abspath(sock_path))
    missing = []
    while not os.path.lexists(d):
        missing.append(d)
        d = os.path.dirname(d)
    for m in reversed(missing):
        try:
            os.mkdir(m, 0o700)
        except FileExistsError:
            pass  # made meanwhile: check_socket_dirs decides whether it is safe
        except OSError as e:
            raise AgentError(f"cannot create the control socket directory {m}: {e.strerror}") from None


def clear_stale_socket(path: str) -> None:
    """Remove ``path`` if it is a socket nobody listens on; refuse anything else there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a symbolic link" if stat.S_ISLNK(st.st_mode) else None
        raise AgentError(
            f"--socket {path}: {kind or 'a file that is not a socket'} is there; "
            "the agent replaces only a stale socket (remove it, or choose another path)"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # a socket left by an agent that died: nobody listens
        return
    except OSError as e:
        raise AgentError(f"--socket {path}: cannot tell whether the socket there is in use ({e.strerror})") from None
    finally:
        probe.close()
    raise AgentError(f"--socket {path}: another agent is listening there; stop it first, or choose another path")


def prepare_socket_path(path: str) -> None:
    """Everything the agent does before binding ``path``: directories made 0700 and checked, stale socket gone."""
    make_private_dirs(path)
    check_socket_dirs(path)
    clear_stale_socket(path)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of Unix socket ``sock`` (``SO_PEERCRED``)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return int(_UCRED.unpack(raw)[1])


def peer_refusal(sock: socket.socket) -> str | None:
    """Why the process connected on ``sock`` may not use the agent, or None if it may."""
    uid = peer_uid(sock)
    if _allowed_owner(uid):
        return None
    return f"uid {uid} may not use this agent's control socket (only uid {os.getuid()} and root may)"


def connect_checked(path: str) -> socket.socket:
    """Connect to the agent socket ``path`` after checking that only this user or root controls it."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise NoAgentError(
            f"no agent listening at {path} ({e.strerror}); is `hilnet agent --config` running?"
        ) from None
    check_socket_dirs(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise AgentError(f"{path} is not a socket; is it the agent's --socket?")
    if not _allowed_owner(st.st_uid):
        raise AgentError(f"{path} belongs to uid {st.st_uid}, not to this user or root: refusing to talk to it")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        uid = peer_uid(s)
    except OSError as e:
        s.close()
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):  # a stale socket, or gone meanwhile
            raise NoAgentError(
                f"no agent listening at {path} ({e.strerror}); is `hilnet agent --config` running?"
            ) from None
        raise AgentError(f"cannot reach the agent at {path}: {e.strerror}") from None
    if not _allowed_owner(uid):
        s.close()
        raise AgentError(f"the process listening at {path} runs as uid {uid}, not as this user or root: refusing")
    return s
