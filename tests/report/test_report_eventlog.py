"""events.jsonl reading: strict per line, FILE:LINE in errors, a cut-short last line tolerated."""

from __future__ import annotations

import json

import pytest

from hilnet.errors import RunFolderError
from hilnet.report.eventlog import parse_record, read_events

GOOD = [
    {"t_ns": 0, "wall_ns": 0, "src": "controller", "event": "run-start", "name": "x"},
    {
        "t_ns": 10,
        "wall_ns": 1,
        "src": "controller",
        "event": "inject",
        "tag": "a#0",
        "frm": "a",
        "to": "b",
        "size": 10,
        "bundle": "ipn:1.0/1/0",
    },
    {"t_ns": 20, "wall_ns": 2, "src": "agent", "event": "stored", "node": "a", "bundle": "ipn:1.0/1/0"},
    {
        "t_ns": 30,
        "wall_ns": 3,
        "src": "link",
        "event": "up",
        "link": "a-b",
        "direction": "a->b",
        "intended_wall_ns": 3,
        "applied_wall_ns": 4,
    },
]


def _write(tmp_path, text: str):
    p = tmp_path / "events.jsonl"
    p.write_text(text)
    return p


def test_reads_records_in_order(tmp_path):
    log = read_events(_write(tmp_path, "".join(json.dumps(e) + "\n" for e in GOOD) + "\n"))
    assert list(log.events) == GOOD and not log.truncated


def test_cut_short_last_line_is_dropped(tmp_path):
    text = "".join(json.dumps(e) + "\n" for e in GOOD) + '{"t_ns": 40, "src": "ag'
    log = read_events(_write(tmp_path, text))
    assert list(log.events) == GOOD and log.truncated


def test_complete_last_line_without_newline_is_kept(tmp_path):
    text = "".join(json.dumps(e) + "\n" for e in GOOD[:-1]) + json.dumps(GOOD[-1])
    log = read_events(_write(tmp_path, text))
    assert list(log.events) == GOOD and not log.truncated


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    lines = [json.dumps(e) for e in GOOD]
    lines.insert(2, "{not json")
    p = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(RunFolderError, match=rf"^{p}:3: not JSON"):
        read_events(p)


def test_missing_file(tmp_path):
    with pytest.raises(RunFolderError, match="no such file"):
        read_events(tmp_path / "events.jsonl")


@pytest.mark.parametrize(
    "record, message",
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"src": "agent", "event": "stored"}', "record has no 't_ns'"),
        ('{"t_ns": "5", "src": "agent", "event": "stored"}', "'t_ns' is str"),
        ('{"t_ns": true, "src": "agent", "event": "stored"}', "'t_ns' is bool"),
        ('{"t_ns": 5, "src": "moon", "event": "stored"}', "src 'moon'"),
        ('{"t_ns": 5, "src": "controller", "event": "inject", "tag": "a#0", "frm": "a", "to": "b"}', "no 'size'"),
        ('{"t_ns": 5, "src": "agent", "event": "stored", "bundle": 7}', "'bundle' is int"),
        ('{"t_ns": 5, "src": "link", "event": "up", "link": "l", "intended_wall_ns": 1}', "no 'applied_wall_ns'"),
        ('{"t_ns": 5, "src": "controller", "event": "link-stats", "link": "l", "stats": []}', "'stats' is list"),
        (b'{"t_ns": 5, "src": "agent", "event": "\xff"}', "not UTF-8"),
    ],
)
def test_malformed_records(record, message):
    raw = record if isinstance(record, bytes) else record.encode()
    with pytest.raises(RunFolderError, match=r"^f\.jsonl:9: ") as e:
        parse_record(raw, "f.jsonl", 9)
    assert message in str(e.value)
