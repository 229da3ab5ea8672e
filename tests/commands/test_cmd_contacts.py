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
    scenario.write_text("hilnet: 1\nclock: {scale: 60, duration: 95m}\n" + r.stdout)
    assert hilnet("validate", str(scenario)).returncode == 0

    again = hilnet("contacts", "export", str(scenario))
    assert again.returncode == 0, again.stderr
    strip = lambda text: [x for x in text.splitlines() if not x.startswith("#")]  # noqa: E731
    assert strip(again.stdout) == strip(ionrc.read_text())


def test_import_of_a_bad_plan_is_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.ionrc"
    p.write_text("a contact +0 +60 1 2 100\na contact +0 +30 2 1 100\n")
    r = hilnet("contacts", "import", str(p))
    assert r.returncode == 2
    assert r.stderr == (
        f"hilnet: error: {p}:1: contacts 1->2 and 2->1 have different windows; expected the "
        "same windows both ways (a hilnet link is up or down as a whole)\n"
    )
