"""The local control socket against a second local user, with real sockets and real uids.

The tests run as root and play the other user as uid 65534 (nobody): a
directory chowned to it, or a forked process that setuid()s to it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from hilnet.errors import AgentError

HILNET = [sys.executable, "-m", "hilnet"]
OTHER_UID = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to play a second user")


@pytest.fixture(scope="module")
def other_python() -> str:
    """A Python the other user may run (the test's own may live in root's home), for its side of the socket."""
    for exe in dict.fromkeys([sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3"]):
        try:
            r = subprocess.run([exe, "-c", "pass"], user=OTHER_UID, group=OTHER_UID, cwd="/", timeout=30)
        except OSError:
            continue
        if r.returncode == 0:
            return exe
    pytest.skip("no Python that uid 65534 may run")


@pytest.fixture
def base():
    """A directory every uid can enter (pytest's tmp_path is root's alone)."""
    d = tempfile.mkdtemp(prefix="hilnet-sock-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def other_users_dir(path: str) -> str:
    os.mkdir(path)
    os.chown(path, OTHER_UID, OTHER_UID)
    os.chmod(path, 0o755)
    return path


def start_agent(where: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    config = os.path.join(where, "node.yaml")
    with open(config, "w") as f:
        f.write("node: a\neid: ipn:1.0\n")
    return subprocess.Popen(
        [*HILNET, "agent", "--config", config, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=where,
        env={**os.environ, **(env or {})},
    )


def wait_for_socket(proc: subprocess.Popen, path: str) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the agent did not make its socket"
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    return err.decode()


def refused(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    return lines[0]


def test_default_directory_made_by_another_user_is_refused(base):
    runtime = other_users_dir(os.path.join(base, "runtime"))
    proc = start_agent(base, env={"XDG_RUNTIME_DIR": runtime})
    line = refused(proc)
    assert f"control socket directory {runtime} is owned by uid {OTHER_UID}" in line
    assert not os.path.exists(os.path.join(runtime, "hilnet", "a.sock"))


def test_tmp_fallback_directory_made_by_another_user_is_refused(base, monkeypatch):
    from hilnet.agent.local_socket import default_socket_path, prepare_socket_path

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = default_socket_path("a", tmp=base)
    squatted = other_users_dir(os.path.join(base, f"hilnet-{os.getuid()}"))
    with pytest.raises(AgentError, match=f"{squatted} is owned by uid {OTHER_UID}"):
        prepare_socket_path(path)


def test_directory_writable_by_others_is_refused(base):
    from hilnet.agent.local_socket import prepare_socket_path

    shared = os.path.join(base, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    with pytest.raises(AgentError, match=r"shared is writable by other users \(mode 0777\)"):
        prepare_socket_path(os.path.join(shared, "a.sock"))
    os.chmod(shared, 0o770)
    with pytest.raises(AgentError, match=r"writable by its group"):
        prepare_socket_path(os.path.join(shared, "a.sock"))


def test_missing_directories_are_made_0700(base):
    path = os.path.join(base, "r", "hilnet", "a.sock")
    proc = start_agent(base, "--socket", path)
    try:
        wait_for_socket(proc, path)
        for d in (os.path.join(base, "r"), os.path.join(base, "r", "hilnet")):
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        stop(proc)


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_socket_option_never_deletes_what_is_not_a_stale_socket(base, kind):
    path = os.path.join(base, "precious")
    if kind == "file":
        with open(path, "w") as f:
            f.write("keep me")
    else:
        os.mkdir(path)
    proc = start_agent(base, "--socket", path)
    if kind == "file":
        line = refused(proc)
        assert f"--socket {path}: a file that is not a socket is there" in line
    else:  # click's own check, before the agent starts
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 2 and f"'{path}' is a directory" in err.decode()
    if kind == "file":
        with open(path) as f:
            assert f.read() == "keep me"
    else:
        assert os.path.isdir(path)


def test_socket_option_refuses_a_live_agents_socket_and_replaces_a_stale_one(base):
    path = os.path.join(base, "a.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen()
    try:
        line = refused(start_agent(base, "--socket", path))
        assert "another agent is listening there" in line
    finally:
        live.close()  # the file stays: now a stale socket, as a killed agent leaves it
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    proc = start_agent(base, "--socket", path)
    try:
        deadline = time.monotonic() + 20
        while not _answers(path):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.05)
    finally:
        stop(proc)


def _answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(b'{"cmd": "hello", "id": 1}\n')
            return b'"reply"' in s.makefile("rb").readline()
    except OSError:
        return False


HELLO = """
import socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(sys.argv[1])
    try:
        s.sendall(b'{"cmd": "hello", "id": 1}\\n')
    except BrokenPipeError:  # refused at accept, maybe before the hello went: its answer is still to read
        pass
    sys.stdout.buffer.write(s.makefile("rb").readline() or b"{}")
"""


def _hello_as(python: str, uid: int, path: str) -> dict:
    """As a process of ``uid``, say hello on ``path``; the first line the agent answers (or {} on EOF)."""
    r = subprocess.run([python, "-c", HELLO, path], user=uid, group=uid, cwd="/", capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_a_peer_of_another_uid_is_refused(base, other_python):
    path = os.path.join(base, "a.sock")
    proc = start_agent(base, "--socket", path)
    try:
        wait_for_socket(proc, path)
        os.chmod(path, 0o666)  # as if the mode were lost: the uid check must hold on its own
        answer = _hello_as(other_python, OTHER_UID, path)
        assert answer["event"] == "error"
        assert f"uid {OTHER_UID} may not use this agent's control socket" in answer["reason"]
        assert _hello_as(other_python, 0, path)["event"] == "reply"  # root (the agent's own uid here) is served
    finally:
        err = stop(proc)
    assert f"refused a connection: uid {OTHER_UID}" in err


LISTEN = """
import os, socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.bind(sys.argv[1])
    os.chmod(sys.argv[1], 0o666)
    s.listen()
    print("ready", flush=True)
    conn, _ = s.accept()
    print("got:", conn.recv(100), flush=True)
"""


@pytest.mark.parametrize("where", ["their directory", "a sticky shared directory"])
def test_send_and_recv_refuse_a_socket_of_another_user(base, tmp_path, where, other_python):
    """Another user's process listens where `hilnet send` is pointed: nothing is sent to it."""
    if where == "their directory":
        theirs = other_users_dir(os.path.join(base, "theirs"))
        why = f"control socket directory {theirs} is owned by uid {OTHER_UID}"
    else:
        theirs = os.path.join(base, "shared")
        os.mkdir(theirs)
        os.chmod(theirs, 0o1777)  # as /tmp: anybody may add a name
        why = f"belongs to uid {OTHER_UID}, not to this user or root"
    path = os.path.join(theirs, "a.sock")
    server = subprocess.Popen(
        [other_python, "-c", LISTEN, path], user=OTHER_UID, group=OTHER_UID, cwd="/", stdout=subprocess.PIPE
    )
    try:
        assert server.stdout.readline() == b"ready\n"
        secret = tmp_path / "secret"
        secret.write_bytes(b"for root only")
        sent = subprocess.run([*HILNET, "send", "ipn:2.1", str(secret), "--socket", path], capture_output=True)
        got = subprocess.run([*HILNET, "recv", "ipn:2.1", "--socket", path], capture_output=True)
    finally:
        server.send_signal(signal.SIGTERM)
        heard = server.stdout.read()
        server.wait(10)
    for r_ in (sent, got):
        assert r_.returncode == 2
        assert why in r_.stderr.decode()
    assert heard == b""  # it never even saw a connection
