"""``hilnet validate`` run as a real subprocess: exit codes, messages, hostile files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def hilnet(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hilnet", *args], capture_output=True, text=True, timeout=timeout)


def test_valid_files_print_one_ok_line_each() -> None:
    r = hilnet("validate", *map(str, SCENARIOS))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == len(SCENARIOS) >= 4
    assert (
        f"{ROOT / 'scenarios/iss-tdrs-ground.yaml'}: ok (iss-tdrs-ground: 5 nodes, 4 links, 18 bundles, "
        "1 fault)" in lines
    )


def test_every_error_of_every_file_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "hilnet: 1\nclock: {duration: 10m}\nnodes:\n  a: {eid: ipn:1.0}\n  b: {eid: ipn:1.0}\n"
        "links:\n  l: {ends: [a, c], medium: serial, rate: 1Mbit/s}\n"
    )
    good = ROOT / "scenarios" / "minimal.yaml"
    r = hilnet("validate", str(bad), str(good))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"{bad}:5:12: node 'b' eid ipn:1.0 is already the eid of another node (line 4); expected each node to "
        "have its own eid",
        f"{bad}:7:17: link 'l' end 'c' is not a node; expected one of: a, b",
        f"{bad}:7:37: link 'l': a serial link is paced by 'baud', not 'rate'; expected baud: 115200 (a symbol "
        "rate: 8N1 moves baud/10 bytes per second)",
    ]
    assert r.stdout == f"{good}: ok (minimal: 2 nodes, 1 link, 3 bundles, 0 faults)\n"
    assert "Traceback" not in r.stderr


BOMB = "hilnet: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("junk.yaml", bytes(range(256)) * 64, "1:1: NUL byte: this is binary data; expected a YAML scenario file"),
        (
            "bomb.yaml",
            BOMB.encode(),
            "3:8: alias *a is not allowed; expected the value written out (aliases are "
            "refused so a file cannot expand without bound)",
        ),
        ("empty.yaml", b"", "1:1: the file is empty; expected a scenario mapping that starts with 'hilnet: 1'"),
        ("huge.yaml", None, "1:1: file is 52428800 bytes; expected a scenario under 4 MiB (refused before parsing)"),
    ],
)
def test_corrupt_files_answer_fast_with_exit_2(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    p = tmp_path / name
    if content is None:
        with open(p, "wb") as f:
            f.write(b"hilnet: 1\n" + b"x" * (50 * 2**20 - 10))
    else:
        p.write_bytes(content)
    start = time.monotonic()
    r = hilnet("validate", str(p))
    elapsed = time.monotonic() - start
    assert r.returncode == 2
    assert f"{p}:{message}" in r.stderr.splitlines()
    assert "Traceback" not in r.stderr
    assert elapsed < 1.0, f"took {elapsed:.2f}s, including interpreter start"


def test_missing_file() -> None:
    r = hilnet("validate", "/nonexistent/x.yaml")
    assert r.returncode == 2
    assert r.stderr == "/nonexistent/x.yaml: cannot read file: No such file or directory\n"


def test_traffic_no_node_can_store_is_refused_at_its_size(tmp_path: Path) -> None:
    """A 100 MiB bundle used to pass validate and plan, and end ``lost`` in the run."""
    big = tmp_path / "big.yaml"
    big.write_text(
        "hilnet: 1\nclock: {duration: 10m}\nnodes:\n  a: {eid: ipn:1.0}\n  b: {eid: ipn:2.0}\n"
        "links:\n  l: {ends: [a, b], medium: ethernet, rate: 100Mbit/s}\n"
        "traffic:\n  - {name: dump, from: a, to: b, size: 100MiB}\n"
    )
    message = (
        f"{big}:9:40: traffic 'dump' size 100MiB makes bundles no node can store (an agent takes bundles of "
        "up to 64MiB); expected a payload of at most 67107840 bytes (the rest is for bundle blocks), or the data "
        "split over several bundles"
    )
    for command in ("validate", "plan"):
        r = hilnet(command, str(big))
        assert r.returncode == 2, (command, r.stdout)
        (line,) = r.stderr.splitlines()
        assert line.endswith(message), command  # plan says "hilnet: error: " first
    fits = tmp_path / "fits.yaml"
    fits.write_text(big.read_text().replace("100MiB", "63MiB"))
    assert hilnet("validate", str(fits)).returncode == 0
