"""Strict JSON lines: the reading and writing shared by control commands and events.

One line is one UTF-8 JSON object of at most :data:`MAX_LINE` bytes. NaN,
duplicate keys and other laxities of ``json`` are errors, so that a bug on
either side of the channel shows up as an ``error`` event rather than as a
silently different run.
"""

from __future__ import annotations

import json
from typing import Any

from hilnet.agent.nodes import node_id
from hilnet.errors import ControlError, InputError

#: Version of the message shapes in docs/control.md; ``"v"`` on a command must match it.
PROTOCOL_VERSION = 1
#: Longest accepted line, bytes, newline excluded (1 MiB).
MAX_LINE = 1 << 20
#: Characters of an offending line quoted back in an ``error`` event.
LINE_EXCERPT = 200

Id = str | int | None


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    for t, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(v, t):
            return name
    return type(v).__name__


class _Obj:
    """Reads the fields of one JSON object, naming each by its path in errors."""

    def __init__(self, obj: Any, prefix: str, where: str):
        self.prefix = prefix  # "configure: " — which message
        self.where = where  # "store." — where in it
        if not isinstance(obj, dict):
            raise self.error(f"field '{where.rstrip('.')}' must be an object, got {_type_name(obj)}")
        self.obj = obj
        self.seen: set[str] = set()

    def error(self, text: str) -> ControlError:
        return ControlError(self.prefix + text)

    def bad(self, name: str, want: str, value: Any) -> ControlError:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            got = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        else:
            got = _type_name(value)
        return self.error(f"field '{self.where}{name}' must be {want}, got {got}")

    def get(self, name: str, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.obj:
            if required:
                raise self.error(f"missing field '{self.where}{name}'")
            return None
        return self.obj[name]

    def int(self, name: str, *, required: bool = True, min: int | None = None) -> int | None:
        v = self.get(name, required)
        if v is None and not required:
            return None
        want = "an integer" if min is None else f"an integer >= {min}"
        if isinstance(v, bool) or not isinstance(v, int) or (min is not None and v < min):
            raise self.bad(name, want, v)
        return v

    def str(self, name: str, *, required: bool = True) -> str | None:
        v = self.get(name, required)
        if v is None and not required:
            return None
        if not isinstance(v, str) or not v:
            raise self.bad(name, "a non-empty string", v)
        return v

    def eid(self, name: str, *, required: bool = True) -> str | None:
        v = self.str(name, required=required)
        if v is not None:
            _check_eid(self, name, v)
        return v

    def finish(self) -> None:
        extra = sorted(set(self.obj) - self.seen)
        if extra:
            raise self.error(f"unknown field '{self.where}{extra[0]}'")


def _check_eid(o: _Obj, name: str, v: Any) -> None:
    try:
        node_id(v)
    except InputError:
        raise o.bad(name, "an ipn:N.S or dtn://node/ EID", v) from None


def _no_constants(name: str) -> Any:
    raise ControlError(f"not JSON: {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ControlError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _load_line(line: bytes | str, what: str) -> dict:
    """One line -> a JSON object, or ControlError for every way it can be malformed."""
    if isinstance(line, str):
        text = line.removesuffix("\n").removesuffix("\r")
        if len(text) > MAX_LINE or len(text.encode("utf-8", "surrogatepass")) > MAX_LINE:
            raise ControlError(f"line is longer than {MAX_LINE} bytes")
    else:
        raw = line.removesuffix(b"\n").removesuffix(b"\r")
        if len(raw) > MAX_LINE:  # before decoding: an oversize line costs nothing more
            raise ControlError(f"line is longer than {MAX_LINE} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ControlError(f"line is not UTF-8 (at byte {e.start})") from None
    line = text
    if not line.strip():
        raise ControlError("line is empty")
    try:
        obj = json.loads(line, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise ControlError(f"not JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise ControlError("not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ControlError(f"not a JSON object: got {_type_name(obj)}")
    if what not in obj:
        raise ControlError(f"missing {what!r}")
    if not isinstance(obj[what], str):
        raise ControlError(f"{what!r} must be a string, got {_type_name(obj[what])}")
    return obj


def _dump(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
