"""Against a real bench: HILNET_BENCH=path/to/bench.yaml (hardware.md says how a lab runs these).

Without it these tests skip and say why. With it: the scenario pairs with
the bench, every board gets this hilnet, ``hilnet doctor`` passes every
check, and the scenario (``$HILNET_BENCH_SCENARIO``, default the ISS one)
passes on the boards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.slow]

REPO = Path(__file__).parent.parent.parent
BENCH = os.environ.get("HILNET_BENCH")
SCENARIO = os.environ.get("HILNET_BENCH_SCENARIO", str(REPO / "scenarios" / "iss-tdrs-ground.yaml"))
needs_bench = pytest.mark.skipif(not BENCH, reason="no real bench: set HILNET_BENCH=path/to/bench.yaml to run these")


def hilnet(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=timeout)


@needs_bench
def test_the_scenario_pairs_with_the_bench():
    r = hilnet("validate", SCENARIO, "--bench", str(BENCH))
    assert r.returncode == 0, r.stderr


@needs_bench
def test_every_board_has_this_hilnet_and_doctor_passes():
    installed = hilnet("bench", "install", str(BENCH))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    doctor = hilnet("doctor", "--bench", str(BENCH), timeout=300)
    assert doctor.returncode == 0, doctor.stdout


@needs_bench
def test_the_scenario_passes_on_the_boards(tmp_path):
    r = hilnet("run", SCENARIO, "--bench", str(BENCH), "--out", str(tmp_path / "run"), "-q", timeout=3600)
    assert r.returncode == 0, r.stdout + r.stderr
