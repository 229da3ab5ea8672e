"""benchmarks/soak.py keeps working: a few seconds of it, light attack, real agents on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_soak_runs_and_real_traffic_loses_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--duration", "8", "--light", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    for figure in ("unloaded:", "under attack:", "ratio:", "b peak RSS:", "peak descriptors:", "attack on b:"):
        assert figure in out, out
    assert "lost nothing: yes" in out
    assert '"mutated_sessions"' in out  # the hostile clients did run
