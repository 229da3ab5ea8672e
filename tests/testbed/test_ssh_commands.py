"""The SSH driver builds argument lists: whatever a bench names reaches the remote shell as one word."""

from __future__ import annotations

import shlex
import subprocess

from hilnet.testbed.ssh import SshBoard, remote_path


def test_a_remote_command_is_quoted_so_the_remote_shell_sees_the_same_arguments(tmp_path):
    board = SshBoard("pi-a", "pi@pi-a.lab", str(tmp_path), config="/etc/hilnet ssh.conf")
    argv = ["printf", "%s\\n", "a b", "$(touch pwned)", "x;y", "'q'", "~/z"]
    cmd = board.command(argv)
    assert cmd[0] == "ssh" and cmd[cmd.index("--") + 1] == "pi@pi-a.lab"
    assert cmd[1:3] == ["-F", "/etc/hilnet ssh.conf"]
    assert "BatchMode=yes" in cmd and f"ControlPath={tmp_path}/pi-a" in cmd and "ControlMaster=no" in cmd
    # ssh hands its last argument to the remote user's shell: run it through one here.
    remote = cmd[-1]
    out = subprocess.run(["sh", "-c", remote], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.splitlines() == argv[2:]
    assert not (tmp_path / "pwned").exists()
    assert shlex.split(remote) == argv


def test_the_master_connection_is_our_own_child_not_a_daemon(tmp_path):
    opts = SshBoard("pi-a", "pi-a", str(tmp_path)).options(master=True)
    assert "ControlMaster=yes" in opts and "ControlPersist=no" in opts and "-N" in opts
    assert "ServerAliveInterval=2" in opts and "ServerAliveCountMax=3" in opts


def test_board_paths_under_home_lose_the_tilde_that_quoting_would_keep():
    assert remote_path("~/.hilnet/venv") == ".hilnet/venv"
    assert remote_path("/opt/hilnet") == "/opt/hilnet"
