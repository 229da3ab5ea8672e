"""The run folder is the run's own: a scenario name cannot move it out of runs/, and --out never mixes two runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from run_e2e_harness import PYTHON, events, hilnet_run, write_scenario

GOOD = """
    hilnet: 1
    name: {name}
    clock: {{scale: 10, duration: 1m}}
    nodes:
      a: {{eid: ipn:1.0}}
      b: {{eid: ipn:2.0}}
    links:
      a-b: {{ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 5ms}}
    traffic:
      - {{name: t, from: a, to: b, start: 1s, count: 1, size: 1KiB}}
"""


def hilnet(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "hilnet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))},
    )


def test_a_name_with_dot_dot_is_refused_at_its_place(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    sc = write_scenario(work, "escape", GOOD.format(name="../../escaped"))
    for cmd in (["validate", str(sc)], ["run", str(sc), "--backend", "loopback", "-q"]):
        p = hilnet(work, *cmd)
        assert p.returncode == 2, p.stdout + p.stderr
        assert f"{sc}:2:7: name '../../escaped' is not a single folder name" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
    assert sorted(os.listdir(tmp_path)) == ["work"]  # nothing written beside runs/, nor anywhere
    assert sorted(os.listdir(work)) == ["escape.yaml"]


def test_out_on_an_earlier_run_folder_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "scenario.yaml").write_text("the earlier run's\n")
    (out / "events.jsonl").write_text('{"event": "earlier"}\n')
    sc = write_scenario(tmp_path, "good", GOOD.format(name="good"))
    p = hilnet_run(sc, out, "loopback", timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"--out {out}: holds 2 entries" in p.stderr and "--force" in p.stderr, p.stderr
    assert (out / "events.jsonl").read_text() == '{"event": "earlier"}\n'
    assert (out / "scenario.yaml").read_text() == "the earlier run's\n"


def test_force_empties_the_earlier_run_folder_first(tmp_path):
    out = tmp_path / "run"
    (out / "stores").mkdir(parents=True)
    (out / "stores" / "gone.store").write_bytes(b"an earlier run's store")
    (out / "scenario.yaml").write_text("the earlier run's\n")
    (out / "events.jsonl").write_text('{"event": "earlier", "t_ns": 0}\n')
    sc = write_scenario(tmp_path, "good", GOOD.format(name="good"))
    p = hilnet_run(sc, out, "loopback", "--force", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not (out / "stores" / "gone.store").exists()
    assert not any(e.get("event") == "earlier" for e in events(out))
    assert any(e.get("event") == "delivered" for e in events(out))


def test_force_refuses_to_empty_a_folder_that_is_not_a_run_folder(tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    sc = write_scenario(tmp_path, "good", GOOD.format(name="good"))
    p = hilnet_run(sc, out, "loopback", "--force", timeout=60)
    assert p.returncode == 2 and "not a run folder; refusing to empty it" in p.stderr, p.stderr
    assert (out / "thesis.tex").read_text() == "years of work"
