"""A board gets its BPSec key file over SSH: 0600, in the run's folder, whatever the path holds."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from hilnet.errors import TestbedError
from hilnet.testbed.bench import BenchTestbed
from hilnet.testbed.ssh import SshBoard


class LocalBoard(SshBoard):
    """Runs what would go over SSH through a local shell, as the board's shell would."""

    def run(self, argv, timeout_s=10.0, data=None):
        remote = self.command(argv)[-1]  # the one string ssh hands to the remote shell
        return subprocess.run(["sh", "-c", remote], input=data, capture_output=True, timeout=timeout_s)


def test_the_key_file_lands_0600_in_the_runs_folder(tmp_path):
    local = tmp_path / "iss.keys"
    local.write_bytes(b"ipn:1.0 integrity " + b"ab" * 16 + b"\n")
    remote = tmp_path / "store dir; $(touch pwned)" / "run-1" / "iss.keys"
    board = LocalBoard("pi-iss", "pi@iss", str(tmp_path))
    assert BenchTestbed._copy_keys(board, str(local), str(remote)) == str(remote)
    assert remote.read_bytes() == local.read_bytes()
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(remote.parent).st_mode) == 0o700
    assert not (tmp_path / "pwned").exists()


def test_a_board_that_cannot_write_it_is_a_testbed_error(tmp_path):
    local = tmp_path / "iss.keys"
    local.write_bytes(b"# none\n")
    (tmp_path / "file").write_text("not a folder")
    board = LocalBoard("pi-iss", "pi@iss", str(tmp_path))
    with pytest.raises(TestbedError, match="board pi-iss: cannot write its key file"):
        BenchTestbed._copy_keys(board, str(local), str(tmp_path / "file" / "iss.keys"))
