"""The few CBOR (RFC 8949) items BPv7 uses, read strictly and written deterministically.

A hand-written reader rather than ``cbor2.loads`` because bundle decoding must
say *where* input is wrong (the byte offset), must refuse what RFC 9171 forbids
(non-shortest integers, indefinite lengths inside blocks) and must never build
more than it was asked for: every read is bounded by ``end`` and checked
against the input before any allocation. It is also faster for bundles than a
general decoder, because it builds no intermediate lists.

Readers take ``(data, pos, end)`` and return ``(value, new_pos)``; they raise
:class:`~hilnet.errors.CborError` with the offset of the offending byte.
Writers return ``bytes`` in the shortest form (RFC 8949 section 4.2.1).
"""

from __future__ import annotations

from struct import Struct

from hilnet.errors import CborError, LimitError

UINT, NEGINT, BYTES, TEXT, ARRAY, MAP, TAG, SIMPLE = range(8)
MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple/float",
)

INDEFINITE = -1  # the "argument" of an indefinite-length head
BREAK = 0xFF

_U16 = Struct(">H")
_U32 = Struct(">I")
_U64 = Struct(">Q")

#: how deep ``skip_item`` follows nested arrays, maps and tags
MAX_DEPTH = 16


# Heads with additional information 25, 26 and 27: how the argument is read, how
# many bytes the head takes, and the smallest argument that needs that width
# (RFC 8949 section 4.2.1: anything smaller must use a shorter head).
_WIDE_HEADS = ((_U16.unpack_from, 3, 0x100), (_U32.unpack_from, 5, 0x10000), (_U64.unpack_from, 9, 0x1_0000_0000))


def read_head(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one item head at ``pos``: ``(major, argument, next_pos)``.

    ``argument`` is the integer value, the length, or ``INDEFINITE``.
    Non-shortest arguments and reserved additional-information values raise.
    """
    if pos >= end:
        raise CborError("truncated: expected a CBOR item", pos)
    ib = data[pos]
    major = ib >> 5
    ai = ib & 0x1F
    if ai < 24:
        return major, ai, pos + 1
    if ai == 24:
        if pos + 2 > end:
            raise CborError("truncated inside an item head", end)
        arg = data[pos + 1]
        if arg < 24 and major != SIMPLE:
            raise CborError("integer not in its shortest form", pos)
        return major, arg, pos + 2
    if ai < 28:
        unpack, size, smallest = _WIDE_HEADS[ai - 25]
        if pos + size > end:
            raise CborError("truncated inside an item head", end)
        arg = unpack(data, pos + 1)[0]
        if arg < smallest and major != SIMPLE:
            raise CborError("integer not in its shortest form", pos)
        return major, arg, pos + size
    if ai == 31:
        if major in (UINT, NEGINT, TAG):
            raise CborError(f"indefinite length is not allowed for a {MAJOR_NAMES[major]}", pos)
        return major, INDEFINITE, pos + 1
    raise CborError(f"reserved additional information {ai}", pos)


def _expected(what: str, major: int, pos: int) -> CborError:
    return CborError(f"expected {what}, found a {MAJOR_NAMES[major]}", pos)


def read_uint(data: bytes, pos: int, end: int, what: str = "an unsigned integer") -> tuple[int, int]:
    """Read an unsigned integer (major type 0)."""
    major, arg, nxt = read_head(data, pos, end)
    if major != UINT:
        raise _expected(what, major, pos)
    return arg, nxt


def read_array(data: bytes, pos: int, end: int, what: str = "an array") -> tuple[int, int]:
    """Read a definite-length array head; return ``(length, next_pos)``."""
    major, arg, nxt = read_head(data, pos, end)
    if major != ARRAY:
        raise _expected(what, major, pos)
    if arg == INDEFINITE:
        raise CborError(f"{what} must have a definite length", pos)
    return arg, nxt


def read_array_of(data: bytes, pos: int, end: int, size: int, what: str) -> int:
    """Read a definite array head that must hold exactly ``size`` items; return next pos."""
    n, nxt = read_array(data, pos, end, what)
    if n != size:
        raise CborError(f"{what} must have {size} items, has {n}", pos)
    return nxt


def _string(data: bytes, pos: int, end: int, major_wanted: int, what: str) -> tuple[int, int]:
    major, n, nxt = read_head(data, pos, end)
    if major != major_wanted:
        raise _expected(what, major, pos)
    if n == INDEFINITE:
        raise CborError(f"{what} must have a definite length", pos)
    if n > end - nxt:
        raise CborError(f"truncated: {what} of {n} bytes runs past the end", pos)
    return nxt, nxt + n


def read_bytes_span(data: bytes, pos: int, end: int, what: str = "a byte string") -> tuple[int, int]:
    """Read a definite byte string; return ``(start, stop)`` of its content, without copying."""
    return _string(data, pos, end, BYTES, what)


def read_bytes(data: bytes, pos: int, end: int, what: str = "a byte string") -> tuple[bytes, int]:
    start, stop = _string(data, pos, end, BYTES, what)
    return bytes(data[start:stop]), stop


def read_text(data: bytes, pos: int, end: int, what: str = "a text string") -> tuple[str, int]:
    start, stop = _string(data, pos, end, TEXT, what)
    try:
        return bytes(data[start:stop]).decode("utf-8"), stop
    except UnicodeDecodeError as e:
        raise CborError(f"{what} is not valid UTF-8", start + e.start) from None


def read_bool(data: bytes, pos: int, end: int, what: str = "a boolean") -> tuple[bool, int]:
    if pos >= end:
        raise CborError(f"truncated: expected {what}", pos)
    b = data[pos]
    if b == 0xF5:
        return True, pos + 1
    if b == 0xF4:
        return False, pos + 1
    raise CborError(f"expected {what} (0xf4/0xf5), found byte 0x{b:02x}", pos)


def skip_item(data: bytes, pos: int, end: int, depth: int = 0) -> int:
    """Step over one well-formed item of any type; return the position after it.

    Used for the parts of administrative records that future specifications
    may extend. Nesting deeper than ``MAX_DEPTH`` raises
    :class:`~hilnet.errors.LimitError`, so a crafted "depth bomb" costs
    nothing and never reaches Python's recursion limit.
    """
    if depth > MAX_DEPTH:
        raise LimitError(f"CBOR nested deeper than {MAX_DEPTH} levels", pos)
    major, arg, nxt = read_head(data, pos, end)
    if major in (BYTES, TEXT):
        if arg == INDEFINITE:
            raise CborError("indefinite-length strings are not allowed here", pos)
        if arg > end - nxt:
            raise CborError(f"truncated: string of {arg} bytes runs past the end", pos)
        return nxt + arg
    if major in (ARRAY, MAP):
        if arg == INDEFINITE:
            raise CborError("indefinite-length containers are not allowed here", pos)
        count = arg * 2 if major == MAP else arg
        # Each item takes at least one byte: refuse counts the input cannot hold
        # before looping over them.
        if count > end - nxt:
            raise CborError(f"truncated: container of {count} items runs past the end", pos)
        for _ in range(count):
            nxt = skip_item(data, nxt, end, depth + 1)
        return nxt
    if major == TAG:
        return skip_item(data, nxt, end, depth + 1)
    if major == SIMPLE and pos < end and data[pos] == BREAK:
        raise CborError("unexpected break", pos)
    if major == SIMPLE and arg == INDEFINITE:
        raise CborError("unexpected break", pos)
    return nxt


# --- writing -------------------------------------------------------------------------

_SMALL_HEADS = [bytes([m << 5 | i]) for m in range(8) for i in range(24)]


def head(major: int, arg: int) -> bytes:
    """The shortest head for ``major`` with argument ``arg`` (0 <= arg < 2**64)."""
    if arg < 24:
        return _SMALL_HEADS[major * 24 + arg]
    mt = major << 5
    if arg < 0x100:
        return bytes((mt | 24, arg))
    if arg < 0x10000:
        return bytes((mt | 25,)) + _U16.pack(arg)
    if arg < 0x1_0000_0000:
        return bytes((mt | 26,)) + _U32.pack(arg)
    if arg < 0x1_0000_0000_0000_0000:
        return bytes((mt | 27,)) + _U64.pack(arg)
    raise ValueError(f"{arg} does not fit in 64 bits")


def uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"{value} is negative")
    return head(UINT, value)


def text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return head(TEXT, len(raw)) + raw


def byte_string(value: bytes) -> bytes:
    return head(BYTES, len(value)) + value


def boolean(value: bool) -> bytes:
    return b"\xf5" if value else b"\xf4"
