"""BPv7 bundles to bytes and back (RFC 9171 section 4), no I/O.

Encoding follows section 4.1: the bundle is a CBOR indefinite-length array of
definite-length blocks, every integer in its shortest form, so the same
:class:`~hilnet.bundle.blocks.Bundle` always gives the same bytes and
``encode_bundle(decode_bundle(b)) == b`` for every ``b`` the decoder accepts.

Decoding is strict: anything RFC 9171 does not allow raises a named
:class:`~hilnet.errors.BundleDecodeError` subclass with the byte offset where
it was found, and nothing else escapes (no assert, IndexError or cbor2 error).
"""

from __future__ import annotations

from hilnet.bundle import cbor
from hilnet.bundle.blocks import (
    BP_VERSION,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    read_hop_count_item,
)
from hilnet.bundle.cos import read_cos_item
from hilnet.bundle.crc import CRC_SIZE, ZERO_FIELD, CrcType, block_crc, check_value
from hilnet.bundle.eid import read_eid
from hilnet.bundle.rules import bundle_problem, time_problem
from hilnet.errors import BlockError, BundleEncodeError, CborError, CrcError, LimitError, VersionError

#: default bound on an encoded bundle, bytes
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: default bound on the number of canonical blocks in one bundle
DEFAULT_MAX_BLOCKS = 256

_CRC_TYPES = (CrcType.NONE, CrcType.CRC16, CrcType.CRC32C)
_BLOCK_FLAGS: dict[int, BlockFlag] = {}  # cache: IntFlag construction is slow and values repeat
_BUNDLE_FLAGS: dict[int, BundleFlag] = {}


def _block_flag(v: int) -> BlockFlag:
    f = _BLOCK_FLAGS.get(v)
    if f is None:
        f = BlockFlag(v)
        if len(_BLOCK_FLAGS) < 1024:
            _BLOCK_FLAGS[v] = f
    return f


def _bundle_flag(v: int) -> BundleFlag:
    f = _BUNDLE_FLAGS.get(v)
    if f is None:
        f = BundleFlag(v)
        if len(_BUNDLE_FLAGS) < 1024:
            _BUNDLE_FLAGS[v] = f
    return f


# --- encoding --------------------------------------------------------------------------


def _with_crc(crc_type: CrcType, parts: list[bytes]) -> list[bytes]:
    """Append the CRC field to a block's encoded ``parts`` (section 4.2.2)."""
    if crc_type == CrcType.NONE:
        return parts
    zero = ZERO_FIELD[crc_type]
    value = block_crc(crc_type, (*parts, zero))
    parts.append(zero[:1] + value)
    return parts


def _primary_parts(p: PrimaryBlock) -> list[bytes]:
    fragment = bool(p.flags & BundleFlag.IS_FRAGMENT)
    items = 8 + (2 if fragment else 0) + (1 if p.crc_type != CrcType.NONE else 0)
    fields = [
        cbor.head(cbor.ARRAY, items),
        cbor.uint(p.version),
        cbor.uint(int(p.flags)),
        cbor.uint(int(p.crc_type)),
        p.destination.to_cbor(),
        p.source.to_cbor(),
        p.report_to.to_cbor(),
        b"\x82" + cbor.uint(p.creation_ms) + cbor.uint(p.sequence),
        cbor.uint(p.lifetime_ms),
    ]
    if fragment:
        if p.fragment_offset is None or p.total_adu_length is None:
            raise BundleEncodeError("a fragment needs fragment_offset and total_adu_length")
        fields.append(cbor.uint(p.fragment_offset) + cbor.uint(p.total_adu_length))
    return _with_crc(p.crc_type, [b"".join(fields)])


def _block_parts(b: CanonicalBlock) -> list[bytes]:
    items = 6 if b.crc_type != CrcType.NONE else 5
    head = b"".join(
        (
            cbor.head(cbor.ARRAY, items),
            cbor.uint(int(b.block_type)),
            cbor.uint(b.number),
            cbor.uint(int(b.flags)),
            cbor.uint(int(b.crc_type)),
            cbor.head(cbor.BYTES, len(b.data)),
        )
    )
    # the data stays a separate part: a 1 MiB payload is copied once, by the final join
    return _with_crc(b.crc_type, [head, b.data])


def encode_primary_block(p: PrimaryBlock) -> bytes:
    """The encoded primary block alone (with its CRC)."""
    return b"".join(_primary_parts(p))


def encode_block(b: CanonicalBlock) -> bytes:
    """One encoded canonical block (with its CRC)."""
    return b"".join(_block_parts(b))


def encode_bundle(bundle: Bundle) -> bytes:
    """The deterministic encoding of ``bundle``.

    Raises :class:`~hilnet.errors.BundleEncodeError` for a bundle RFC 9171
    does not allow (payload not last, duplicate block numbers, a fragment
    without offsets, numbers over 64 bits...).
    """
    problem = bundle_problem(bundle)
    if problem is not None:
        raise BundleEncodeError(problem[0])
    for b in bundle.blocks:
        if b.crc_type not in _CRC_TYPES:
            raise BundleEncodeError(f"block {b.number}: CRC type {b.crc_type} is not 0, 1 or 2")
    if bundle.primary.crc_type not in _CRC_TYPES:
        raise BundleEncodeError(f"primary block: CRC type {bundle.primary.crc_type} is not 0, 1 or 2")
    parts = [b"\x9f"]
    parts += _primary_parts(bundle.primary)
    for b in bundle.blocks:
        parts += _block_parts(b)
    parts.append(b"\xff")
    return b"".join(parts)


# --- decoding --------------------------------------------------------------------------


def _read_crc(
    data: bytes, mv: memoryview, start: int, pos: int, end: int, crc_type: int, what: str, check: bool
) -> int:
    """Check the CRC field at ``pos`` of the block that starts at ``start``; return the next pos."""
    size = CRC_SIZE[crc_type]
    if pos >= end:
        raise CborError(f"truncated: {what} ends before its CRC", pos)
    if data[pos] != 0x40 | size:
        raise CborError(f"{what}: the CRC of type {crc_type} must be a byte string of {size} bytes", pos)
    stop = pos + 1 + size
    if stop > end:
        raise CborError(f"truncated inside the CRC of {what}", end)
    if check:
        want = check_value(crc_type, mv[start:stop], pos + 1 - start)
        got = data[pos + 1 : stop]
        if want != got:
            raise CrcError(f"{what}: CRC is 0x{got.hex()}, computed 0x{want.hex()}", pos + 1)
    return stop


def _uint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    # Most fields are small integers: one byte, no call into the general reader.
    if pos < end and data[pos] < 24:
        return data[pos], pos + 1
    return cbor.read_uint(data, pos, end, what)


def _read_crc_type(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    if pos < end and data[pos] < 3:
        return data[pos], pos + 1
    crc_type, nxt = cbor.read_uint(data, pos, end, f"{what} CRC type")
    if crc_type > 2:
        raise BlockError(f"{what}: CRC type {crc_type} is not 0 (none), 1 (CRC-16) or 2 (CRC-32C)", pos)
    return crc_type, nxt


def _read_primary(data: bytes, mv: memoryview, pos: int, end: int, check: bool) -> tuple[PrimaryBlock, int]:
    start = pos
    n, pos = cbor.read_array(data, pos, end, "primary block")
    if not 8 <= n <= 11:
        raise BlockError(f"the primary block must have 8 to 11 items, has {n}", start)
    version, nxt = _uint(data, pos, end, "version")
    if version != BP_VERSION:
        raise VersionError(f"bundle protocol version {version}, only {BP_VERSION} is supported", pos)
    flags, pos = _uint(data, nxt, end, "bundle processing control flags")
    crc_type, pos = _read_crc_type(data, pos, end, "primary block")
    fragment = flags & BundleFlag.IS_FRAGMENT
    expected = 8 + (2 if fragment else 0) + (1 if crc_type else 0)
    if n != expected:
        raise BlockError(
            f"the primary block has {n} items; with CRC type {crc_type} and "
            f"{'a' if fragment else 'no'} fragment flag it must have {expected}",
            start,
        )
    destination, pos = read_eid(data, pos, end, "destination")
    source, pos = read_eid(data, pos, end, "source")
    report_to, pos = read_eid(data, pos, end, "report-to")
    pos = cbor.read_array_of(data, pos, end, 2, "creation timestamp")
    times_at = pos
    creation, pos = _uint(data, pos, end, "creation time")
    sequence, pos = _uint(data, pos, end, "sequence number")
    lifetime_at = pos
    lifetime, pos = _uint(data, pos, end, "lifetime")
    too_late = time_problem(creation, lifetime)
    if too_late is not None:
        raise LimitError(too_late, times_at if too_late.startswith("creation") else lifetime_at)
    offset = total = None
    if fragment:
        offset, pos = cbor.read_uint(data, pos, end, "fragment offset")
        total, pos = cbor.read_uint(data, pos, end, "total ADU length")
    if crc_type:
        pos = _read_crc(data, mv, start, pos, end, crc_type, "primary block", check)
    primary = PrimaryBlock(
        destination,
        source,
        report_to,
        creation,
        sequence,
        lifetime,
        _bundle_flag(flags),
        _CRC_TYPES[crc_type],
        offset,
        total,
        version,
    )
    return primary, pos


def _read_block(
    data: bytes, mv: memoryview, pos: int, end: int, check: bool, max_size: int
) -> tuple[CanonicalBlock, int]:
    start = pos
    n, pos = cbor.read_array(data, pos, end, "canonical block")
    if n != 5 and n != 6:
        raise BlockError(f"a canonical block must have 5 or 6 items, has {n}", start)
    block_type, pos = _uint(data, pos, end, "block type")
    number, pos = _uint(data, pos, end, "block number")
    flags, pos = _uint(data, pos, end, "block processing control flags")
    crc_type, pos = _read_crc_type(data, pos, end, f"block {number}")
    if n != (6 if crc_type else 5):
        raise BlockError(
            f"block {number} has {n} items; with CRC type {crc_type} it must have {6 if crc_type else 5}", start
        )
    major, length, dstart = cbor.read_head(data, pos, end)
    if major != cbor.BYTES:
        raise CborError(f"block {number} data must be a byte string, found a {cbor.MAJOR_NAMES[major]}", pos)
    if length == cbor.INDEFINITE:
        raise CborError(f"block {number} data must be a definite-length byte string", pos)
    if length > max_size:
        raise LimitError(f"block {number} claims {length} bytes of data, over the limit of {max_size}", pos)
    dstop = dstart + length
    if dstop > end:
        raise CborError(f"truncated: block {number} data of {length} bytes runs past the end", pos)
    # The extension blocks this codec understands must hold what RFC 9171 says.
    if block_type == BlockType.HOP_COUNT:
        _, at = read_hop_count_item(data, dstart, dstop)
    elif block_type == BlockType.BUNDLE_AGE:
        _, at = cbor.read_uint(data, dstart, dstop, "bundle age")
    elif block_type == BlockType.PREVIOUS_NODE:
        _, at = read_eid(data, dstart, dstop, "previous node")
    elif block_type == BlockType.QUALITY_OF_SERVICE:
        _, at = read_cos_item(data, dstart, dstop)
    else:
        at = dstop
    if at != dstop:
        raise CborError(f"block {number}: {dstop - at} trailing bytes after its content", at)
    pos = dstop
    if crc_type:
        pos = _read_crc(data, mv, start, pos, end, crc_type, f"block {number}", check)
    block = CanonicalBlock(block_type, number, data[dstart:dstop], _block_flag(flags), _CRC_TYPES[crc_type])
    return block, pos


def decode_bundle(
    data: bytes, max_size: int = DEFAULT_MAX_SIZE, *, max_blocks: int = DEFAULT_MAX_BLOCKS, check_crc: bool = True
) -> Bundle:
    """Decode one whole bundle from ``data`` (bytes-like), checking every rule and CRC.

    ``max_size`` bounds the input in bytes and ``max_blocks`` the number of
    canonical blocks; over either raises :class:`~hilnet.errors.LimitError`.
    ``check_crc=False`` skips CRC verification (for a node that trusts its
    link); everything else is still checked.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data)
    if end > max_size:
        raise LimitError(f"a bundle of {end} bytes is over the limit of {max_size}", max_size)
    if end == 0:
        raise CborError("truncated: no bytes", 0)
    if data[0] != 0x9F:
        major = data[0] >> 5
        if major == cbor.ARRAY:
            raise CborError("a bundle must be an indefinite-length array (0x9f)", 0)
        raise CborError(f"a bundle must be a CBOR array, found a {cbor.MAJOR_NAMES[major]}", 0)
    mv = memoryview(data)
    primary, pos = _read_primary(data, mv, 1, end, check_crc)
    offsets = [1]
    blocks: list[CanonicalBlock] = []
    while True:
        if pos >= end:
            raise CborError("truncated: the bundle ends without its break (0xff)", pos)
        if data[pos] == 0xFF:
            pos += 1
            break
        if len(blocks) >= max_blocks:
            raise LimitError(f"more than {max_blocks} canonical blocks", pos)
        offsets.append(pos)
        block, pos = _read_block(data, mv, pos, end, check_crc, max_size)
        blocks.append(block)
    if pos != end:
        raise CborError(f"{end - pos} trailing bytes after the bundle", pos)
    if not blocks:
        raise BlockError("the bundle has no payload block", end - 1)
    bundle = Bundle(primary, tuple(blocks))
    problem = bundle_problem(bundle)
    if problem is not None:
        raise BlockError(problem[0], offsets[problem[1]])
    return bundle
