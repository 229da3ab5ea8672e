"""Read a run's ``events.jsonl`` back, strictly, with FILE:LINE in every complaint.

The file is input from disk (possibly edited by hand, possibly cut short when
a run was killed), so nothing in it is trusted: each line must be a JSON
object with the fields every record has (``t_ns``, ``src``, ``event``) and the
fields :func:`hilnet.controller.checks.check_run` reads for its kind. One
exception: a last line without its newline that does not parse is what an
interrupted writer leaves behind; it is dropped and reported in
:attr:`EventLog.truncated` instead of failing the whole folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from hilnet.errors import RunFolderError

MAX_LINE_BYTES = 1 << 20  # one record; a longer line is corruption, not an event

# Fields a record of (src, event) must carry, with the JSON types allowed.
_INT = (int,)
_STR = (str,)
_REQUIRED: dict[tuple[str, str], dict[str, tuple[type, ...]]] = {
    ("controller", "inject"): {"tag": _STR, "frm": _STR, "to": _STR, "size": _INT},
    ("controller", "inject-failed"): {"tag": _STR, "frm": _STR, "to": _STR, "size": _INT},
    ("controller", "cut"): {"link": _STR},
    ("controller", "restore"): {"link": _STR},
    ("controller", "burst-start"): {"link": _STR},
    ("controller", "burst-end"): {"link": _STR},
    ("controller", "crash"): {"node": _STR},
    ("controller", "restart"): {"node": _STR},
    ("controller", "link-stats"): {"link": _STR, "stats": (dict,)},
    ("controller", "run-end"): {"reason": _STR},
}
_SOURCES = ("controller", "agent", "link")


@dataclass(frozen=True, slots=True)
class EventLog:
    """The records of one events.jsonl, in file order."""

    path: str
    events: tuple[Mapping, ...]
    truncated: bool = False  # the last line was cut short (an interrupted run) and was dropped


def read_events(path: str | os.PathLike[str]) -> EventLog:
    """Read and check ``path``; raises :class:`RunFolderError` naming the file and line."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RunFolderError(f"{name}: no such file; a run folder holds events.jsonl") from None
    except OSError as e:
        raise RunFolderError(f"{name}: cannot read: {e.strerror or e}") from None
    lines = data.split(b"\n")
    # split leaves "" after a final newline; anything else there is a line cut short.
    tail = lines.pop()
    events: list[Mapping] = []
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            events.append(parse_record(raw, name, number))
    truncated = False
    if tail.strip():
        try:
            events.append(parse_record(tail, name, len(lines) + 1))
        except RunFolderError:
            truncated = True
    return EventLog(name, tuple(events), truncated)


def parse_record(raw: bytes, file: str = "<events>", line: int = 0) -> Mapping:
    """One events.jsonl line -> its record; raises :class:`RunFolderError` at ``file:line``."""
    where = f"{file}:{line}"
    if len(raw) > MAX_LINE_BYTES:
        raise RunFolderError(f"{where}: line is {len(raw)} bytes; a record is under {MAX_LINE_BYTES} bytes")
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{where}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise RunFolderError(f"{where}: expected a JSON object, got {type(record).__name__}")
    _need(record, where, {"t_ns": _INT, "src": _STR, "event": _STR})
    src, kind = record["src"], record["event"]
    if src not in _SOURCES:
        raise RunFolderError(f"{where}: src {src!r}; expected one of {', '.join(_SOURCES)}")
    if "wall_ns" in record:
        _need(record, where, {"wall_ns": _INT})
    if src == "controller":
        _need(record, where, _REQUIRED.get((src, kind), {}))
    elif src == "agent":
        for key in ("bundle", "node"):
            if record.get(key) is not None:
                _need(record, where, {key: _STR})
    elif kind in ("up", "down", "change", "drop"):
        _need(record, where, {"link": _STR})
        if "intended_wall_ns" in record or "applied_wall_ns" in record:
            _need(record, where, {"intended_wall_ns": _INT, "applied_wall_ns": _INT})
    return record


def _need(record: dict, where: str, fields: Mapping[str, tuple[type, ...]]) -> None:
    for key, types in fields.items():
        if key not in record:
            raise RunFolderError(f"{where}: {record.get('event', 'record')!r} record has no {key!r}")
        value = record[key]
        # bool is an int to Python but never a time or a size here
        if isinstance(value, bool) or not isinstance(value, types):
            want = "/".join(t.__name__ for t in types)
            raise RunFolderError(f"{where}: {key!r} is {type(value).__name__} {value!r:.40}; expected {want}")
