"""The Abstract Security Block (RFC 9172 section 3.6): the data of every BIB and BCB. No I/O.

A BIB's or BCB's block-type-specific data is a CBOR *sequence* (not an
array) of: security targets (block numbers), security context id, security
context flags (bit 0: parameters present), security source (an EID),
the parameters if flagged (``[[id, value], ...]``) and the results
(``[[[id, value], ...] per target]``, in the order of the targets).

Decoding is strict, as the bundle codec is: anything else raises a named
:class:`~hilnet.errors.BundleDecodeError` with the byte offset (plus
``base``, the offset of the block data in the bundle, when known).
Parameter and result values of the default contexts are integers or byte
strings; a value of any other CBOR type is kept as :class:`RawItem`, so an
ASB of an unknown context re-encodes byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from hilnet.bundle import cbor
from hilnet.bundle.eid import Eid, read_eid
from hilnet.errors import BlockError, BundleDecodeError, CborError

__all__ = ["PARAMETERS_PRESENT", "RawItem", "SecurityBlock", "Value", "decode_asb", "encode_asb"]

#: security context flag bit 0 (RFC 9172 section 3.6)
PARAMETERS_PRESENT = 0x01


@dataclass(frozen=True, slots=True)
class RawItem:
    """One encoded CBOR item of a type the default contexts do not use, kept as it came."""

    encoded: bytes


#: a parameter or result value
Value = int | bytes | RawItem
#: ``(id, value)`` pairs, in wire order
Pairs = tuple[tuple[int, Value], ...]


@dataclass(frozen=True, slots=True)
class SecurityBlock:
    """The content of one BIB or BCB.

    ``parameters`` is None when the "parameters present" flag is clear;
    ``results[i]`` belongs to ``targets[i]``. ``flags`` keeps unknown bits.
    """

    targets: tuple[int, ...]
    context_id: int
    source: Eid
    parameters: Pairs | None
    results: tuple[Pairs, ...]
    flags: int = 0

    def parameter(self, pid: int) -> Value | None:
        """The value of parameter ``pid``, or None."""
        for k, v in self.parameters or ():
            if k == pid:
                return v
        return None

    def result(self, target: int, rid: int) -> Value | None:
        """The value of result ``rid`` for block number ``target``, or None (also when it is no target)."""
        for t, results in zip(self.targets, self.results, strict=True):
            if t == target:
                return dict(results).get(rid)
        return None


# --- encoding --------------------------------------------------------------------------


def _value(v: Value) -> bytes:
    if isinstance(v, RawItem):
        return v.encoded
    if isinstance(v, bytes):
        return cbor.byte_string(v)
    return cbor.uint(v) if v >= 0 else cbor.head(cbor.NEGINT, -1 - v)


def _pairs(pairs: Pairs) -> bytes:
    return cbor.head(cbor.ARRAY, len(pairs)) + b"".join(b"\x82" + cbor.uint(k) + _value(v) for k, v in pairs)


def encode_asb(asb: SecurityBlock) -> bytes:
    """The block-type-specific data of a BIB or BCB holding ``asb``."""
    if not asb.targets or len(asb.results) != len(asb.targets):
        raise ValueError("an ASB needs at least one target and one result set per target")
    flags = asb.flags | PARAMETERS_PRESENT if asb.parameters is not None else asb.flags & ~PARAMETERS_PRESENT
    parts = [
        cbor.head(cbor.ARRAY, len(asb.targets)),
        *(cbor.uint(t) for t in asb.targets),
        _value(asb.context_id),
        cbor.uint(flags),
        asb.source.to_cbor(),
    ]
    if asb.parameters is not None:
        parts.append(_pairs(asb.parameters))
    parts.append(cbor.head(cbor.ARRAY, len(asb.results)))
    parts.extend(_pairs(r) for r in asb.results)
    return b"".join(parts)


# --- decoding --------------------------------------------------------------------------


def _read_int(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    major, arg, nxt = cbor.read_head(data, pos, end)
    if major == cbor.UINT:
        return arg, nxt
    if major == cbor.NEGINT:
        return -1 - arg, nxt
    raise CborError(f"{what} must be an integer, found a {cbor.MAJOR_NAMES[major]}", pos)


def _read_value(data: bytes, pos: int, end: int, what: str) -> tuple[Value, int]:
    major = data[pos] >> 5 if pos < end else cbor.UINT
    if major in (cbor.UINT, cbor.NEGINT):
        return _read_int(data, pos, end, what)
    if major == cbor.BYTES:
        return cbor.read_bytes(data, pos, end, what)
    nxt = cbor.skip_item(data, pos, end)
    return RawItem(data[pos:nxt]), nxt


def _read_pairs(data: bytes, pos: int, end: int, what: str) -> tuple[Pairs, int]:
    n, pos = cbor.read_array(data, pos, end, what)
    if n > end - pos:
        raise CborError(f"truncated: {what} claims {n} entries", pos)
    pairs: list[tuple[int, Value]] = []
    for i in range(n):
        pos = cbor.read_array_of(data, pos, end, 2, f"{what} [{i}]")
        pid, pos = cbor.read_uint(data, pos, end, f"{what} [{i}] id")
        value, pos = _read_value(data, pos, end, f"{what} [{i}] value")
        pairs.append((pid, value))
    return tuple(pairs), pos


def _read_targets(data: bytes, pos: int, end: int) -> tuple[tuple[int, ...], int]:
    start = pos
    n, pos = cbor.read_array(data, pos, end, "security targets")
    if n == 0:
        raise BlockError("an ASB needs at least one security target", start)
    if n > end - pos:
        raise CborError(f"truncated: security targets claim {n} entries", start)
    targets: list[int] = []
    for i in range(n):
        at = pos
        t, pos = cbor.read_uint(data, pos, end, f"security target [{i}]")
        if t in targets:
            raise BlockError(f"security target {t} is listed twice", at)
        targets.append(t)
    return tuple(targets), pos


def _read_asb(data: bytes, end: int) -> SecurityBlock:
    targets, pos = _read_targets(data, 0, end)
    context_id, pos = _read_int(data, pos, end, "security context id")
    flags, pos = cbor.read_uint(data, pos, end, "security context flags")
    source, pos = read_eid(data, pos, end, "security source")
    parameters: Pairs | None = None
    if flags & PARAMETERS_PRESENT:
        parameters, pos = _read_pairs(data, pos, end, "security context parameters")
    at = pos
    n, pos = cbor.read_array(data, pos, end, "security results")
    if n != len(targets):
        raise BlockError(f"{len(targets)} security targets but {n} result sets", at)
    results = []
    for i in range(n):
        r, pos = _read_pairs(data, pos, end, f"security results of target {targets[i]}")
        results.append(r)
    if pos != end:
        raise CborError(f"{end - pos} trailing bytes after the security results", pos)
    return SecurityBlock(targets, context_id, source, parameters, tuple(results), flags)


def decode_asb(data: bytes, base: int = 0) -> SecurityBlock:
    """Decode the block data of a BIB or BCB; error offsets are shifted by ``base``."""
    try:
        return _read_asb(bytes(data), len(data))
    except BundleDecodeError as e:
        raise type(e)(f"security block: {e.message}", e.offset + base) from None
