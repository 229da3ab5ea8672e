"""``hilnet report RUN_DIR`` as a real subprocess and through CliRunner: exit 0, 1, 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from report_synth import synth_events, write_run

from hilnet.commands.report import command
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

MINIMAL = Path(__file__).parents[2] / "scenarios" / "minimal.yaml"


def _scenario_text() -> str:
    if MINIMAL.is_file():
        return MINIMAL.read_text()
    return (
        "hilnet: 1\nname: minimal\nclock: {scale: 10, duration: 2m}\n"
        "nodes: {a: {eid: ipn:1.0}, b: {eid: ipn:2.0}}\n"
        "links: {a-b: {ends: [a, b], medium: ethernet, rate: 10Mbit/s, delay: 20ms}}\n"
        "traffic: [{name: hello, from: a, to: b, start: 10s, every: 20s, count: 3, size: 1KiB}]\n"
        "expect: {delivered: all, within: 1m}\n"
    )


def _folder(tmp_path: Path, name: str = "run", **bad) -> Path:
    text = _scenario_text()
    scenario = load_scenario_text(text, "scenario.yaml")
    return write_run(tmp_path / name, text, synth_events(scenario, compile_plan(scenario), **bad))


def _hilnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=120)


def test_subprocess_exit_codes(tmp_path):
    good = _folder(tmp_path, "good")
    bad = _folder(tmp_path, "bad", lose={"hello#1"})
    p = _hilnet("report", str(good))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("PASS: minimal") and f"run folder: {good}" in p.stdout
    assert json.loads((good / "summary.json").read_text())["passed"] is True
    assert (good / "report.html").is_file() and (good / "junit.xml").is_file()

    p = _hilnet("report", str(bad))
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("FAIL: minimal") and "hello#1" in p.stdout

    p = _hilnet("report", str(tmp_path / "nowhere"))
    assert p.returncode == 2 and "no such run folder" in p.stderr and p.stdout == ""

    corrupt = _folder(tmp_path, "corrupt")
    lines = (corrupt / "events.jsonl").read_text().splitlines(keepends=True)
    lines[3] = '{"t_ns": 5, "src": "agent", "event": \n'
    (corrupt / "events.jsonl").write_text("".join(lines))
    p = _hilnet("report", str(corrupt))
    assert p.returncode == 2
    assert f"{corrupt / 'events.jsonl'}:4: not JSON" in p.stderr


def test_quiet_prints_nothing(tmp_path):
    bad = _folder(tmp_path, lose={"hello#0"})
    result = CliRunner().invoke(command, [str(bad), "--quiet"])
    assert result.exit_code == 1 and result.output == ""
    assert (bad / "summary.json").is_file()


def test_truncated_last_line_is_tolerated(tmp_path):
    folder = _folder(tmp_path)
    path = folder / "events.jsonl"
    path.write_text(path.read_text() + '{"t_ns": 99, "src": "agent", "eve')
    result = CliRunner().invoke(command, [str(folder)])
    assert result.exit_code == 0, result.output
    assert "cut short" in result.output  # CliRunner mixes stderr into output


def test_missing_files_exit_2(tmp_path):
    folder = _folder(tmp_path)
    (folder / "events.jsonl").unlink()
    p = _hilnet("report", str(folder))
    assert p.returncode == 2 and "events.jsonl: no such file" in p.stderr
    folder = _folder(tmp_path, "noscen")
    (folder / "scenario.yaml").unlink()
    p = _hilnet("report", str(folder))
    assert p.returncode == 2 and "scenario.yaml: no such file" in p.stderr


def test_broken_scenario_copy_exit_2(tmp_path):
    folder = _folder(tmp_path)
    (folder / "scenario.yaml").write_text("hilnet: 1\nname: x\nclock: {scale: 0}\n")
    p = _hilnet("report", str(folder))
    assert p.returncode == 2 and "scenario.yaml:" in p.stderr


def test_empty_events_exit_2(tmp_path):
    folder = _folder(tmp_path)
    (folder / "events.jsonl").write_text("")
    p = _hilnet("report", str(folder))
    assert p.returncode == 2 and "no records" in p.stderr
