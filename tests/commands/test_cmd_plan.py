"""``hilnet plan`` run as a real subprocess: the table, --json, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "scenarios" / "iss-tdrs-ground.yaml"


def hilnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=30)


def test_plan_table() -> None:
    r = hilnet("plan", str(ISS))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("plan iss-tdrs-ground: 1h35m of scenario time at scale 60 = 1m35s of wall time\n")
    assert "33m       33s    cut          wsc-eac" in out
    assert "no warnings: the traffic fits its windows" in out


def test_plan_json_matches_the_table() -> None:
    r = hilnet("plan", str(ISS), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["name"] == "iss-tdrs-ground" and data["scale"] == 60 and data["duration_ns"] == 95 * 60 * 10**9
    kinds = {a["kind"] for a in data["actions"]}
    assert {"link-up", "link-down", "link-change", "inject", "cut", "restore"} <= kinds
    assert [a["at_ns"] for a in data["actions"]] == sorted(a["at_ns"] for a in data["actions"])
    assert sum(1 for a in data["actions"] if a["kind"] == "inject") == 18
    assert data["warnings"] == []
    serial = [c for c in data["capacities"] if c["link"] == "tdrs-e-tdrs-w"]
    assert serial[0]["wall_ns"] == 95 * 10**9


def test_plan_of_a_bad_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("hilnet: 1\nclock: {duration: 1m}\nnodes: {a: {eid: ipn:1.0}}\nlinks: {l: {ends: [a, b]}}\n")
    r = hilnet("plan", str(p))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{p}:4:12: link 'l' lacks 'medium';" in r.stderr
    assert f"{p}:4:23: link 'l' end 'b' is not a node; expected one of: a" in r.stderr
