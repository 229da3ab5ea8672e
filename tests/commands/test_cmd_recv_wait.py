"""``hilnet recv --wait``: started before its agent, it waits for the socket instead of exiting."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from hilnet.clock import VirtualClock
from hilnet.commands.recv import connect_waiting
from hilnet.errors import NoAgentError

HILNET = [sys.executable, "-m", "hilnet"]


def test_recv_started_before_the_agent_waits_for_it(tmp_path):
    sock = tmp_path / "a.sock"
    out = tmp_path / "out"
    recv = subprocess.Popen(
        [*HILNET, "recv", "ipn:1.1", "--socket", str(sock), "--wait", "60", "--count", "1", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    agent = None
    try:
        time.sleep(1.0)  # recv is up and finds no socket: it must still be waiting
        assert recv.poll() is None, recv.communicate()[1]
        (tmp_path / "node.yaml").write_text("node: a\neid: ipn:1.0\n")
        agent = subprocess.Popen(
            [*HILNET, "agent", "--config", str(tmp_path / "node.yaml"), "--socket", str(sock)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert recv.stderr.readline().startswith(b"listening on ipn:1.1")
        sent = subprocess.run(
            [*HILNET, "send", "ipn:1.1", "-", "--socket", str(sock)], input=b"late", capture_output=True, timeout=30
        )
        assert sent.returncode == 0, sent.stderr
        stdout, stderr = recv.communicate(timeout=30)
        assert recv.returncode == 0, stderr
        assert [f.read_bytes() for f in out.iterdir()] == [b"late"]
    finally:
        recv.kill()
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)


def test_recv_wait_gives_up_after_the_time_given(tmp_path):
    started = time.monotonic()
    r = subprocess.run(
        [*HILNET, "recv", "ipn:1.1", "--socket", str(tmp_path / "none.sock"), "--wait", "0.5"],
        capture_output=True,
        timeout=30,
    )
    assert time.monotonic() - started >= 0.5
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "no agent listening at" in lines[0] and "(waited 0.5 s)" in lines[0], lines


def test_connect_waiting_keeps_time_on_the_clock_it_is_given(tmp_path):
    """Retries every 0.1 s of the given clock and gives up at its deadline; no real time passes."""
    clock = VirtualClock()
    with pytest.raises(NoAgentError, match=r"waited 0.5 s"):
        connect_waiting(str(tmp_path / "nobody.sock"), 0.5, clock)
    assert clock.now_ns() == 500_000_000
