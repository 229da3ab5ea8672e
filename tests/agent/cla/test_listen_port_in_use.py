"""A listen port already taken reads as which port, which CL and who holds it, not as ``[Errno 98]``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

HILNET = [sys.executable, "-m", "hilnet"]


@pytest.fixture
def held_port():
    """A TCP port this test process listens on, as another program would."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("cla", ["tcpcl", "mtcp"])
def test_port_in_use_names_port_cl_and_holder(tmp_path, held_port, cla):
    node = tmp_path / "node.yaml"
    node.write_text(f"node: a\neid: ipn:1.0\nclas:\n  - {{type: {cla}, listen: '127.0.0.1:{held_port}'}}\n")
    p = subprocess.run(
        [*HILNET, "agent", "--config", str(node), "--socket", str(tmp_path / "a.sock")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert "internal error" not in line and "Errno" not in line
    assert f"{cla} cannot listen on 127.0.0.1:{held_port}: TCP port {held_port} is already in use" in line
    assert f"held by pid {os.getpid()} (" in line  # this test's process, with its command line


def test_holder_lookup_finds_the_listening_process(held_port):
    from hilnet.agent.cla.port_owner import port_holder

    assert port_holder(held_port).startswith(f"pid {os.getpid()} (")
    with socket.socket() as s:  # a port nobody listens on has no holder
        s.bind(("127.0.0.1", 0))
        assert port_holder(s.getsockname()[1]) is None
