"""``hilnet contacts export|import`` as real subprocesses, round trip included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "scenarios" / "iss-tdrs-ground.yaml"


def hilnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=30)


def test_export_import_export(tmp_path: Path) -> None:
    r = hilnet("contacts", "export", str(ISS))
    assert r.returncode == 0, r.stderr
    ionrc = tmp_path / "iss.ionrc"
    ionrc.write_text(r.stdout)
    contacts = [line for line in r.stdout.splitlines() if line.startswith("a contact")]
    # iss-tdrs-e: 3 windows, the others always up, tdrs-w-wsc split in 3 by its changes; x2 directions
    assert len(contacts) == 2 * (3 + 1 + 3 + 1)
    assert "a contact +0 +25 1 2 235370" in contacts

    r = hilnet("contacts", "import", str(ionrc), "--scale", "60")
    assert r.returncode == 0, r.stderr
    scenario = tmp_path / "back.yaml"
    assert "clock: {scale: 60, duration: 1h35m}" in r.stdout  # a whole scenario, at the scale asked for
    scenario.write_text(r.stdout)
    assert hilnet("validate", str(scenario)).returncode == 0

    again = hilnet("contacts", "export", str(scenario))
    assert again.returncode == 0, again.stderr
    strip = lambda text: [x for x in text.splitlines() if not x.startswith("#")]  # noqa: E731
    assert strip(again.stdout) == strip(ionrc.read_text())


def test_import_of_a_bad_plan_is_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.ionrc"
    p.write_text("a contact +0 +60 1 2 100\na contact +30 +90 1 2 100\n")
    r = hilnet("contacts", "import", str(p))
    assert r.returncode == 2
    assert r.stderr == (
        f"hilnet: error: {p}:2: contact 1->2 overlaps the one on line 1; expected contacts one after another\n"
    )
    assert r.stdout == ""


def test_import_notes_go_to_stderr_and_the_epoch_to_the_scenario(tmp_path: Path) -> None:
    p = tmp_path / "node.ionrc"
    p.write_text(
        "1 1 ''\ns\na contact +0 +3600 1 1 1000\n"
        "a contact 2024/03/01-12:00:00 2024/03/01-13:00:00 1 2 1000\n"
        "a contact 2024/03/01-12:30:00 2024/03/01-12:40:00 2 1 100\n"
    )
    r = hilnet("contacts", "import", str(p), "--epoch", "2024-03-01T11:00:00Z")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"hilnet: note: {p}:3: contact 1->1 is node 1's contact with itself; skipped "
        "(hilnet nodes reach themselves without a link)",
        f"hilnet: note: {p}: skipped '1: initialises the node, nothing to import' (line 1)",
        f"hilnet: note: {p}: skipped 's: starts ION, nothing to import' (line 2)",
        f"hilnet: note: {p}:4: contact 1->2 has no range; delay 0 used",
        f"hilnet: note: {p}:5: contact 2->1 has no range; delay 0 used",
    ]
    assert 'clock: {scale: 1, duration: 2h, epoch: "2024-03-01T11:00:00Z"}' in r.stdout
    assert "    node-1->node-2:\n      up: [1h-2h]\n" in r.stdout
    assert "    node-2->node-1:\n" in r.stdout and "      up: [1h30m-1h40m]\n" in r.stdout
    scenario = tmp_path / "node.yaml"
    scenario.write_text(r.stdout)
    assert hilnet("validate", str(scenario)).returncode == 0
    plan = hilnet("plan", str(scenario))
    assert plan.returncode == 0 and "backward only" in plan.stdout

    bad = hilnet("contacts", "import", str(p), "--epoch", "2024-03-01 11:00")
    assert bad.returncode == 2 and "is not a UTC ISO 8601 time" in bad.stderr
