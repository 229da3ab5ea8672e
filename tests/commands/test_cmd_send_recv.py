"""Standalone use, for real: two `hilnet agent --config` processes, `hilnet send` and `hilnet recv`.

Agent a (ipn:1.0) dials agent b (ipn:2.0) over TCPCLv4 on 127.0.0.1 and routes
everything to it; applications talk to each agent over its Unix socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

HILNET = [sys.executable, "-m", "hilnet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Node:
    def __init__(self, tmp, name: str, yaml_text: str):
        self.dir = tmp / name
        self.dir.mkdir()
        self.config = self.dir / "node.yaml"
        self.config.write_text(yaml_text)
        self.socket = str(self.dir / "s.sock")
        self.log = self.dir / "agent.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*HILNET, "agent", "--config", str(self.config), "--socket", self.socket],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=self.dir,
            )
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 20, f"agent {name}")
        assert self.proc.poll() is None, self.log.read_text()

    def events(self) -> str:
        return self.log.read_text()  # in standalone mode events go to stderr, one JSON line each

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def pair(tmp_path):
    port = free_port()
    b = Node(
        tmp_path,
        "b",
        f"node: b\neid: ipn:2.0\nstore: {{path: b.store}}\nclas:\n  - {{type: tcpcl, listen: '127.0.0.1:{port}'}}\n",
    )
    a = Node(
        tmp_path,
        "a",
        f"node: a\neid: ipn:1.0\nstore: {{path: a.store}}\n"
        f"clas:\n  - {{type: tcpcl, peers: {{'ipn:2.0': '127.0.0.1:{port}'}}}}\n"
        "routes: {'*': 'ipn:2.0'}\n",
    )
    try:
        wait_for(lambda: '"session-up"' in a.events(), 20, "the TCPCL session")
        yield a, b
    finally:
        a.stop()
        b.stop()
    # Both stores were files next to their config, where `store: {path: ...}` put them.
    assert (tmp_path / "a" / "a.store").exists() and (tmp_path / "b" / "b.store").exists()


def run(*args, input: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*HILNET, *args], input=input, capture_output=True, timeout=timeout)


def test_file_arrives_byte_identical(pair, tmp_path):
    a, b = pair
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(200_000))
    out = tmp_path / "out"
    recv = subprocess.Popen(
        [*HILNET, "recv", "ipn:2.1", "--out", str(out), "--count", "1", "--socket", b.socket],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert recv.stderr.readline().startswith(b"listening on ipn:2.1")
        sent = run("send", "ipn:2.1", str(photo), "--socket", a.socket)
        assert sent.returncode == 0, sent.stderr
        assert b"sent 200000 bytes to ipn:2.1" in sent.stdout
        stdout, stderr = recv.communicate(timeout=30)
    finally:
        recv.kill()
    assert recv.returncode == 0, stderr
    files = list(out.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == photo.read_bytes()
    assert str(files[0]).encode() in stdout
    # Delivered once, and the sender's copy left its store only on b's acknowledgement.
    assert b.events().count('"delivered"') == 1 and '"acked"' in a.events()


def test_bundle_sent_before_recv_started_is_held_then_delivered(pair, tmp_path):
    a, b = pair
    sent = run("send", "ipn:2.7", "-", "--socket", a.socket, input=b"held for later\n")
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: '"stored"' in b.events(), 20, "b to store the bundle")
    time.sleep(0.3)
    assert '"delivered"' not in b.events()  # nobody listens on ipn:2.7 yet: held, not dropped
    out = tmp_path / "later"
    got = run("recv", "ipn:2.7", "--out", str(out), "--count", "1", "--socket", b.socket)
    assert got.returncode == 0, got.stderr
    assert [f.read_bytes() for f in out.iterdir()] == [b"held for later\n"]


def test_send_without_an_agent_fails_in_one_line(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"x")
    r = run("send", "ipn:2.1", str(f), "--socket", str(tmp_path / "nobody.sock"))
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no agent listening at" in lines[0] and "nobody.sock" in lines[0]
    r = run("recv", "ipn:2.1", "--socket", str(tmp_path / "nobody.sock"))
    assert r.returncode == 2 and len(r.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("node: a\neid: ipn:1.0\nclas: [ {type: tcpcl\n", "bad.yaml:4:1", "not valid YAML"),
        ("node: a\neid: ipn:1.0\nclas:\n  - {type: tcpcl, listen: 5}\n", "bad.yaml:4:", "listen"),
        ("node: a\neid: ipn:1.0\nsotre: {path: x}\n", "bad.yaml:3:1", "unknown field 'sotre'"),
        ("- just\n- a list\n", "bad.yaml:1:1", "expected a mapping"),
    ],
)
def test_bad_config_exits_2_naming_file_line_col(tmp_path, text, where, why):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = run("agent", "--config", str(cfg), "--socket", str(tmp_path / "s.sock"), timeout=20)
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert where in lines[0] and why in lines[0]
    assert not (tmp_path / "s.sock").exists()
