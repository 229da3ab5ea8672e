"""benchmarks/crash_points.py keeps working: a few random ``kill -9`` points, no loss, no duplicate.

The full run (1,000 points) is a benchmark a developer runs by hand; this runs
the same script with a handful of trials, as a real subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "crash_points.py"


def test_ten_random_kill_points_lose_and_duplicate_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SCRIPT.parents[1]))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "10", "--seed", "7", "--bundles", "20", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    rows = {
        ln.split()[0]: ln.split()[1:]
        for ln in lines
        if ln.split() and ln.split()[0] in ("receive", "forward", "expire", "delete", "all")
    }
    assert set(rows) == {"receive", "forward", "expire", "delete", "all"}
    assert rows["all"][0] == "10"  # trials
    assert int(rows["all"][2]) > 0  # bundles acknowledged: the trials did something
    assert any(ln.startswith("PASS: 0 acknowledged bundles lost, 0 duplicate deliveries") for ln in lines)
