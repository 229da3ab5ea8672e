"""Strict JSON lines: the reading and writing shared by control commands and events.

One line is one UTF-8 JSON object of at most :data:`MAX_LINE` bytes. NaN,
duplicate keys and other laxities of ``json`` are errors, so that a bug on
either side of the channel shows up as an ``error`` event rather than as a
silently different run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

from hilnet.agent.nodes import node_id
from hilnet.errors import ControlError, InputError

#: Version of the message shapes in docs/control.md; ``"v"`` on a command must match it.
PROTOCOL_VERSION = 1
#: Longest accepted line, bytes, newline excluded (1 MiB).
MAX_LINE = 1 << 20
#: Characters of an offending line quoted back in an ``error`` event.
LINE_EXCERPT = 200
#: Integers on the wire are int64: a larger one is refused before it reaches a store or a timer.
MAX_INT = (1 << 63) - 1

Id = str | int | None


def type_name(v: Any) -> str:
    """The JSON name of ``v``'s type (``null``, ``integer``, ``array``...), for error messages."""
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


class FieldReader:
    """Reads the fields of one JSON object, naming each by its path in errors.

    ``prefix`` says which message (``"configure: "``), ``where`` where in it
    (``"store."``). Each read marks its field seen; :meth:`finish` refuses the
    fields nobody read, which is what makes unknown fields errors.
    """

    def __init__(self, obj: Any, prefix: str, where: str):
        self.prefix = prefix
        self.where = where
        if not isinstance(obj, dict):
            raise self.error(f"field '{where.rstrip('.')}' must be an object, got {type_name(obj)}")
        self.obj: dict[str, Any] = obj
        self.seen: set[str] = set()

    def nested(self, obj: Any, where: str) -> FieldReader:
        """A reader for the object ``obj`` found at ``where`` (a path ending in ``.``) of this message."""
        return FieldReader(obj, self.prefix, where)

    def error(self, text: str) -> ControlError:
        return ControlError(self.prefix + text)

    def bad(self, name: str, want: str, value: Any) -> ControlError:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            got = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        else:
            got = type_name(value)
        return self.error(f"field '{self.where}{name}' must be {want}, got {got}")

    def get(self, name: str, required: bool) -> Any:
        """The raw value of ``name``; None when absent (or null) and not ``required``."""
        self.seen.add(name)
        if name not in self.obj:
            if required:
                raise self.error(f"missing field '{self.where}{name}'")
            return None
        return self.obj[name]

    def integer(self, name: str, *, min: int | None = None) -> int:
        """Required integer field ``name`` (booleans are not integers), at least ``min``."""
        v = self.optional_integer(name, min=min, required=True)
        if v is None:  # null for a required field
            raise self.bad(name, "an integer" if min is None else f"an integer >= {min}", v)
        return v

    def optional_integer(self, name: str, *, min: int | None = None, required: bool = False) -> int | None:
        """Integer field ``name``; None when absent or null."""
        v = self.get(name, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or (min is not None and v < min) or abs(v) > MAX_INT:
            want = "an integer" if min is None else f"an integer >= {min}"
            raise self.bad(name, f"{want} (at most 2^63-1)" if isinstance(v, int) and v > MAX_INT else want, v)
        return v

    def optional_boolean(self, name: str) -> bool | None:
        """Boolean field ``name`` (true or false, not 0 or 1); None when absent or null."""
        v = self.get(name, False)
        if v is None:
            return None
        if not isinstance(v, bool):
            raise self.bad(name, "true or false", v)
        return v

    def string(self, name: str) -> str:
        """Required non-empty string field ``name``."""
        v = self.optional_string(name, required=True)
        if v is None:
            raise self.bad(name, "a non-empty string", v)
        return v

    def optional_string(self, name: str, *, required: bool = False) -> str | None:
        """Non-empty string field ``name``; None when absent or null."""
        v = self.get(name, required)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            raise self.bad(name, "a non-empty string", v)
        return v

    def eid(self, name: str) -> str:
        """Required endpoint id field ``name`` (``ipn:N.S`` or ``dtn://node/...``)."""
        v = self.string(name)
        self.check_eid(name, v)
        return v

    def check_eid(self, name: str, value: Any) -> None:
        """Refuse ``value`` (found as ``name``) unless it is an ``ipn:`` or ``dtn:`` EID of a node."""
        try:
            node_id(value)
        except InputError:
            raise self.bad(name, "an ipn:N.S or dtn://node/ EID", value) from None

    def finish(self) -> None:
        """Refuse the first field (in sorted order) that no read asked for."""
        extra = sorted(set(self.obj) - self.seen)
        if extra:
            raise self.error(f"unknown field '{self.where}{extra[0]}'")


def _no_constants(name: str) -> Any:
    raise ControlError(f"not JSON: {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; a key given twice shows as a shorter dict
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ControlError(f"duplicate key {k!r}")
            seen.add(k)
    return out


def load_line(line: bytes | str, what: str) -> dict[str, Any]:
    """One line -> a JSON object whose string field ``what`` names the message.

    Raises ControlError for every way the line can be malformed: over
    :data:`MAX_LINE` bytes, not UTF-8, empty, not JSON, not an object, no ``what``.
    """
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
    except ValueError:  # Python's int-string conversion limit (4300 digits) raises outside JSONDecodeError
        raise ControlError("not JSON: a number is too long") from None
    if not isinstance(obj, dict):
        raise ControlError(f"not a JSON object: got {type_name(obj)}")
    if what not in obj:
        raise ControlError(f"missing {what!r}")
    if not isinstance(obj[what], str):
        raise ControlError(f"{what!r} must be a string, got {type_name(obj[what])}")
    return obj


def dump_line(obj: dict[str, Any]) -> bytes:
    """``obj`` as one compact JSON line (UTF-8, ending in a newline)."""
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class OversizeLine(bytes):
    """The first bytes of a line longer than the limit; the rest was read and discarded."""


def _head(line: bytes, limit: int) -> OversizeLine:
    # 4 bytes per character at most in UTF-8: enough for the error's excerpt.
    return OversizeLine(line[: min(limit, 4 * LINE_EXCERPT)])


async def read_lines(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The lines ``reader`` brings; a line over its limit comes as one :class:`OversizeLine` head.

    An oversize line is never held whole, nor split: its head is kept for the
    error's excerpt and the rest is discarded as it arrives, up to and with its
    newline, so a 100 MiB line costs the reader's limit in memory and yields
    one error, and no part of it is ever read as a line of its own.
    """
    discarding = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            if e.partial and not discarding:
                yield e.partial
            return
        except asyncio.LimitOverrunError as e:
            chunk = await reader.readexactly(e.consumed)
            if not discarding:
                discarding = True
                yield _head(chunk, len(chunk))
            continue
        if discarding:  # the tail of the oversize line, up to its newline
            discarding = False
            continue
        yield line


def read_lines_sync(stream: IO[bytes], limit: int = MAX_LINE + 1) -> Iterator[bytes]:
    """:func:`read_lines` for a blocking binary file: lines of at most ``limit`` bytes (newline included)."""
    while line := stream.readline(limit + 1):
        if line.endswith(b"\n") or len(line) <= limit:
            yield line
            continue
        while (rest := stream.readline(limit + 1)) and not rest.endswith(b"\n"):
            pass  # discard the oversize line up to its newline
        yield _head(line, limit)
