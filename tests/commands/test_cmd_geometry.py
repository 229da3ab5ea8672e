"""``hilnet geometry`` (and the computed windows in ``hilnet plan``) as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sgp4")

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "scenarios" / "iss-tdrs-orbit.yaml"


def hilnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=60)


def test_geometry_table() -> None:
    r = hilnet("geometry", str(ISS))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "geometry of iss-tdrs-orbit: scenario time 0 is 2024-05-06T20:00:00Z; 4 windows"
    assert lines[1].split() == [
        "link",
        "window",
        "(scenario)",
        "UTC",
        "start",
        "length",
        "elevation",
        "start/peak/end",
        "range",
        "km",
        "light",
        "time",
    ]
    rows = {line.split()[0]: line for line in lines[3:]}
    assert rows["iss-tdrs-e"].split()[1].startswith("0s-16m43")
    assert rows["iss-tdrs-w"].split()[2] == "2024-05-06T20:20:39Z"
    assert "12.9/12.9/12.9" in rows["tdrs-w-wsc"] and "134.345-134.345 ms" in rows["tdrs-w-wsc"]
    assert "76,427-76,427" in rows["tdrs-e-tdrs-w"]


def test_geometry_json_and_plan_agree() -> None:
    r = hilnet("geometry", str(ISS), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    links = {x["link"]: x for x in data["links"]}
    assert set(links) == {"iss-tdrs-e", "iss-tdrs-w", "tdrs-e-tdrs-w", "tdrs-w-wsc"}
    (ground,) = links["tdrs-w-wsc"]["passes"]
    assert ground["elevation_deg"]["peak"] == pytest.approx(12.9, abs=0.05) and links["tdrs-w-wsc"]["station"] == "wsc"
    (e_pass,) = links["iss-tdrs-e"]["passes"]
    assert 118e6 < e_pass["light_time_min_ns"] < e_pass["light_time_max_ns"] < 146e6
    plan = json.loads(hilnet("plan", str(ISS), "--json").stdout)
    assert plan["geometry"] == data["links"]
    # The contacts of the space link are the computed window, at its largest light time.
    (contact,) = [c for c in plan["contacts"] if (c["from"], c["to"]) == ("iss", "tdrs-e")]
    assert (contact["start_ns"], contact["end_ns"]) == (e_pass["start_ns"], e_pass["end_ns"])
    text = hilnet("plan", str(ISS)).stdout
    assert "computed windows (from positions: elevation in degrees for ground passes; light time one way)" in text
    # The per-step delay changes fold into their window's link-up in the text timeline (JSON keeps each).
    changes = [a for a in plan["actions"] if a["kind"] == "link-change"]
    assert len(changes) > 200 and all(set(a["details"]["params"]) == {"delay_ns"} for a in changes)
    assert f"({len(plan['actions'])} actions; {len(changes)} light-time steps folded into their windows)" in text
    assert "link-up    iss-tdrs-w     light time 119.787-145.685 ms, every 10s" in text
    assert "link-change" not in text


def test_geometry_of_a_scenario_without_positions() -> None:
    r = hilnet("geometry", str(ROOT / "scenarios" / "minimal.yaml"))
    assert r.returncode == 2
    assert "no link has up: line-of-sight or delay: light-time" in r.stderr


def test_contacts_export_has_one_contact_per_pass() -> None:
    r = hilnet("contacts", "export", str(ISS))
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("a contact")]
    # 4 computed links and wsc-eac, both ways; the ISS has one pass with each TDRS in 45 minutes.
    assert len(lines) == 10
    assert "a contact +0 +16 1 2 235370" in lines


def test_an_old_tle_is_a_warning(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(ISS.read_text().replace("epoch: 2024-05-06T20:00:00Z", "epoch: 2024-06-06T20:00:00Z"))
    r = hilnet("geometry", str(old))
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("hilnet: warning: node iss: its TLE's epoch 2024-05-06T19:53:04Z is 31.0 days from")
