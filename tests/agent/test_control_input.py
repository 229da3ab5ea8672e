"""Hostile control input: every line gets an error reply and the agent lives.

Runs a real ``hilnet agent --stdio`` and writes raw bytes to its stdin, the
way a broken or hostile controller would. Also checks the line reader and the
parser directly, on the lines that once escaped them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from hilnet.agent import protocol as ctl
from hilnet.agent.jsonlines import MAX_LINE, OversizeLine, read_lines, read_lines_sync
from hilnet.errors import ControlError

HUGE_INT = "1" * 4301  # one digit past Python's int-string conversion limit


def _agent(tmp_path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "hilnet", "agent", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )


def _events(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "line",
    [
        '{"cmd":"hello","id":' + HUGE_INT + "}",
        '{"cmd":"status","x":' + HUGE_INT + "}",
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","scale":1' + "0" * 400 + "}",
        '{"cmd":"inject","dest":"ipn:2.1","size":1,"lifetime_ns":' + "9" * 30 + "}",
    ],
    ids=["huge-id", "huge-unknown-field", "huge-scale", "lifetime-past-int64"],
)
def test_a_bad_number_gets_an_error_reply_and_the_agent_lives(tmp_path, line):
    p = _agent(tmp_path)
    out, err = p.communicate(line.encode() + b'\n{"cmd":"hello","id":2}\n', timeout=60)
    events = _events(out)
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, (events, err[-2000:])
    assert "internal error" not in errors[0]["reason"]
    assert any(e["event"] == "reply" and e["id"] == 2 for e in events), events  # it lived on
    assert b"Traceback" not in err


def test_an_oversize_line_arriving_in_pieces_is_discarded_whole(tmp_path):
    """A 1 MiB + line written in small pieces, with a command hidden in its tail: one error, no command run."""
    p = _agent(tmp_path)
    assert p.stdin is not None
    tail = b'"}\n'
    line = b'{"cmd":"x","pad":"' + b"a" * (MAX_LINE + 10) + b'{"cmd":"shutdown","id":9}' + tail
    for i in range(0, len(line), 50_000):
        p.stdin.write(line[i : i + 50_000])
        p.stdin.flush()
    out, _ = p.communicate(b'{"cmd":"hello","id":3}\n', timeout=60)
    events = _events(out)
    assert [e["reason"] for e in events if e["event"] == "error"] == [f"line is longer than {MAX_LINE} bytes"]
    assert not any(e.get("id") == 9 for e in events)
    assert any(e["event"] == "reply" and e["id"] == 3 for e in events)


def test_parse_command_turns_every_number_trouble_into_a_control_error():
    for line in (
        '{"cmd":"hello","id":' + HUGE_INT + "}",
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","scale":' + "1" * 400 + "}",
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","epoch_ns":' + "1" * 20 + "}",
    ):
        with pytest.raises(ControlError):
            ctl.parse_command(line)


def _stream(*chunks: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader(limit=64 + 2)
    for c in chunks:
        r.feed_data(c)
    r.feed_eof()
    return r


def test_read_lines_yields_one_head_per_oversize_line():
    async def collect() -> list[bytes]:
        reader = _stream(b"ok\n", b"x" * 100, b"y" * 100, b"\n", b"after\n", b"z" * 200)
        return [line async for line in read_lines(reader)]

    lines = asyncio.run(collect())
    assert lines[0] == b"ok\n" and isinstance(lines[1], OversizeLine) and lines[2] == b"after\n"
    assert len(lines) == 4 and isinstance(lines[3], OversizeLine)  # an oversize last line without newline too


def test_read_lines_sync_bounds_each_line(tmp_path):
    path = tmp_path / "lines"
    path.write_bytes(b"a\n" + b"b" * 300 + b"\nc\n")
    with open(path, "rb") as f:
        lines = list(read_lines_sync(f, limit=100))
    assert lines[0] == b"a\n" and isinstance(lines[1], OversizeLine) and lines[2] == b"c\n" and len(lines) == 3
    assert len(lines[1]) <= 100


def test_configure_reads_limits_and_names_a_bad_one():
    c = ctl.parse_command(
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","limits":{"memory_bytes":1048576,"partial_timeout_ns":5}}'
    )
    assert c.limits == ctl.Limits(memory_bytes=1 << 20, partial_timeout_ns=5)
    assert ctl.parse_command('{"cmd":"configure","node":"a","eid":"ipn:1.0"}').limits == ctl.Limits()
    with pytest.raises(ControlError, match=r"^configure: unknown field 'limits.memory'$"):
        ctl.parse_command('{"cmd":"configure","node":"a","eid":"ipn:1.0","limits":{"memory":1}}')
    with pytest.raises(ControlError, match=r"field 'limits.max_connections' must be an integer >= 1, got 0"):
        ctl.parse_command('{"cmd":"configure","node":"a","eid":"ipn:1.0","limits":{"max_connections":0}}')
