"""The BPv7 bundle model (RFC 9171 sections 4.2-4.4): flags, blocks, bundle, bundle id.

Everything here is a frozen value; "setting" the hop count or bundle age
returns a new :class:`Bundle`. Integers keep RFC units: DTN times and
lifetimes in milliseconds (DTN time counts from 2000-01-01 00:00:00 UTC),
offsets and lengths in bytes. Unknown flag bits and unknown block types are
kept as they came so that a bundle re-encodes byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from typing import TypeVar

from hilnet.bundle import cbor
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import Eid, read_eid
from hilnet.errors import BlockError, BundleDecodeError, BundleEncodeError, CborError

__all__ = [
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "BundleId",
    "CanonicalBlock",
    "CrcType",
    "HopCount",
    "PrimaryBlock",
    "bundle_age_ms",
    "hop_count",
    "previous_node",
    "set_bundle_age",
    "set_hop_count",
    "set_previous_node",
    "DTN_EPOCH_UNIX_S",
    "dtn_ms_from_unix_ns",
    "unix_ns_from_dtn_ms",
]

BP_VERSION = 7
PAYLOAD_BLOCK_NUMBER = 1
UINT64_MAX = (1 << 64) - 1

_T = TypeVar("_T")

#: 2000-01-01T00:00:00Z in Unix seconds: the DTN epoch (section 4.2.6)
DTN_EPOCH_UNIX_S = 946_684_800

#: How far past the DTN epoch a bundle's creation time plus lifetime may reach, ms (200 years).
#: Stores and events keep times as signed 64-bit Unix ns, which end in 2262; a bundle
#: that outlives that cannot be stored, so the codec refuses it rather than the store failing.
MAX_BUNDLE_TIME_MS = 200 * 36_525 * 864_000  # 200 years of 365.25 days


def dtn_ms_from_unix_ns(unix_ns: int) -> int:
    """DTN time (ms since 2000-01-01 UTC) of a Unix time in ns (leap seconds ignored, as BP does)."""
    return max(0, (unix_ns - DTN_EPOCH_UNIX_S * 1_000_000_000) // 1_000_000)


def unix_ns_from_dtn_ms(dtn_ms: int) -> int:
    """Unix time in ns of a DTN time in ms."""
    return (dtn_ms + DTN_EPOCH_UNIX_S * 1000) * 1_000_000


class BundleFlag(IntFlag):
    """Bundle processing control flags (section 4.2.3); unknown bits are kept."""

    NONE = 0
    IS_FRAGMENT = 0x000001
    ADMIN_RECORD = 0x000002
    MUST_NOT_FRAGMENT = 0x000004
    ACK_REQUESTED = 0x000020
    STATUS_TIME_REQUESTED = 0x000040
    REPORT_RECEPTION = 0x004000
    REPORT_FORWARDING = 0x010000
    REPORT_DELIVERY = 0x020000
    REPORT_DELETION = 0x040000


REPORT_FLAGS = (
    BundleFlag.REPORT_RECEPTION | BundleFlag.REPORT_FORWARDING | BundleFlag.REPORT_DELIVERY | BundleFlag.REPORT_DELETION
)


class BlockFlag(IntFlag):
    """Block processing control flags (section 4.2.4); unknown bits are kept."""

    NONE = 0
    REPLICATE_IN_EVERY_FRAGMENT = 0x01
    REPORT_IF_UNPROCESSABLE = 0x02
    DELETE_BUNDLE_IF_UNPROCESSABLE = 0x04
    DISCARD_IF_UNPROCESSABLE = 0x10


class BlockType(IntEnum):
    """Block type codes (section 9.1; 11 and 12 are BPSec's, RFC 9172; 193 is ION's, private use)."""

    PAYLOAD = 1
    PREVIOUS_NODE = 6
    BUNDLE_AGE = 7
    HOP_COUNT = 10
    BLOCK_INTEGRITY = 11
    BLOCK_CONFIDENTIALITY = 12
    QUALITY_OF_SERVICE = 193  # ION's class-of-service block (hilnet.bundle.cos)


#: extension block types this codec understands (reads and checks the content of)
UNDERSTOOD_TYPES = frozenset(
    {
        BlockType.PAYLOAD,
        BlockType.PREVIOUS_NODE,
        BlockType.BUNDLE_AGE,
        BlockType.HOP_COUNT,
        BlockType.QUALITY_OF_SERVICE,
    }
)


@dataclass(frozen=True, slots=True)
class PrimaryBlock:
    """The primary block (section 4.3.1). Times in ms (DTN time), lengths in bytes."""

    destination: Eid
    source: Eid
    report_to: Eid
    creation_ms: int  # DTN time of creation; 0 = unknown (then a bundle age block is required)
    sequence: int
    lifetime_ms: int
    flags: BundleFlag = BundleFlag.NONE
    crc_type: CrcType = CrcType.CRC32C
    fragment_offset: int | None = None  # bytes into the original ADU; set iff IS_FRAGMENT
    total_adu_length: int | None = None  # bytes of the original ADU; set iff IS_FRAGMENT
    version: int = BP_VERSION

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags & BundleFlag.IS_FRAGMENT)

    @property
    def is_admin_record(self) -> bool:
        return bool(self.flags & BundleFlag.ADMIN_RECORD)

    @property
    def expires_ms(self) -> int:
        """DTN time (ms) after which the bundle is no longer useful (creation + lifetime)."""
        return self.creation_ms + self.lifetime_ms


@dataclass(frozen=True, slots=True)
class CanonicalBlock:
    """A payload or extension block (section 4.3.2); ``data`` is the block-type-specific data."""

    block_type: int  # a BlockType, or any other code carried through untouched
    number: int
    data: bytes
    flags: BlockFlag = BlockFlag.NONE
    crc_type: CrcType = CrcType.CRC32C


@dataclass(frozen=True, slots=True)
class BundleId:
    """What identifies a bundle (and a fragment of it) for duplicate suppression.

    ``fragment_offset`` and ``fragment_length`` (payload bytes of the
    fragment) are None for a whole bundle.
    """

    source: Eid
    creation_ms: int
    sequence: int
    fragment_offset: int | None = None
    fragment_length: int | None = None

    @property
    def whole(self) -> BundleId:
        """The id of the bundle this fragment belongs to (itself for a whole bundle)."""
        return BundleId(self.source, self.creation_ms, self.sequence)

    def __str__(self) -> str:
        text = f"{self.source} {self.creation_ms}.{self.sequence}"
        if self.fragment_offset is not None:
            text += f" [{self.fragment_offset}+{self.fragment_length}]"
        return text


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle: its primary block and its canonical blocks in wire order, payload last."""

    primary: PrimaryBlock
    blocks: tuple[CanonicalBlock, ...]

    @property
    def payload_block(self) -> CanonicalBlock:
        return self.blocks[-1]

    @property
    def payload(self) -> bytes:
        return self.blocks[-1].data

    @property
    def id(self) -> BundleId:
        p = self.primary
        if p.flags & BundleFlag.IS_FRAGMENT:
            return BundleId(p.source, p.creation_ms, p.sequence, p.fragment_offset, len(self.blocks[-1].data))
        return BundleId(p.source, p.creation_ms, p.sequence)

    @property
    def extension_blocks(self) -> tuple[CanonicalBlock, ...]:
        return self.blocks[:-1]

    def block(self, block_type: int) -> CanonicalBlock | None:
        """The first block of ``block_type``, or None."""
        for b in self.blocks:
            if b.block_type == block_type:
                return b
        return None

    def with_extension(
        self, block_type: int, data: bytes, flags: BlockFlag = BlockFlag.NONE, crc_type: CrcType | None = None
    ) -> Bundle:
        """A copy with the (first) extension block of ``block_type`` set to ``data``.

        An existing block keeps its number, flags, CRC type and position;
        a new one gets the next free number and goes just before the payload.
        """
        for i, b in enumerate(self.blocks[:-1]):
            if b.block_type == block_type:
                blocks = list(self.blocks)
                blocks[i] = replace(b, data=data)
                return replace(self, blocks=tuple(blocks))
        number = max([PAYLOAD_BLOCK_NUMBER, *(b.number for b in self.blocks)]) + 1
        new = CanonicalBlock(
            block_type, number, data, flags, self.payload_block.crc_type if crc_type is None else crc_type
        )
        return replace(self, blocks=(*self.blocks[:-1], new, self.blocks[-1]))

    def without(self, block_type: int) -> Bundle:
        """A copy without extension blocks of ``block_type``."""
        return replace(
            self, blocks=tuple(b for b in self.blocks[:-1] if b.block_type != block_type) + (self.blocks[-1],)
        )


# --- the extension blocks of section 4.4 -----------------------------------------------


@dataclass(frozen=True, slots=True)
class HopCount:
    """Hop Count block content (section 4.4.3): limit 1..255 and hops taken so far."""

    limit: int
    count: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def _whole(data: bytes, reader: Callable[[bytes, int, int], tuple[_T, int]], what: str, base: int) -> _T:
    value, pos = reader(data, 0, len(data))
    if pos != len(data):
        raise CborError(f"{what}: {len(data) - pos} trailing bytes in the block data", base + pos)
    return value


def read_previous_node(data: bytes, base: int = 0) -> Eid:
    """Decode Previous Node block data; errors carry offsets shifted by ``base``."""
    try:
        return _whole(data, lambda d, p, e: read_eid(d, p, e, "previous node"), "previous node", base)
    except BundleDecodeError as e:
        raise type(e)(e.message, e.offset + base) from None


def read_bundle_age(data: bytes, base: int = 0) -> int:
    """Decode Bundle Age block data (ms)."""
    try:
        return _whole(data, lambda d, p, e: cbor.read_uint(d, p, e, "bundle age"), "bundle age", base)
    except BundleDecodeError as e:
        raise type(e)(e.message, e.offset + base) from None


def read_hop_count_item(data: bytes, pos: int, end: int) -> tuple[HopCount, int]:
    pos = cbor.read_array_of(data, pos, end, 2, "hop count block data")
    at = pos
    limit, pos = cbor.read_uint(data, pos, end, "hop limit")
    if not 1 <= limit <= 255:
        raise BlockError(f"hop limit must be 1..255, is {limit}", at)
    count, pos = cbor.read_uint(data, pos, end, "hop count")
    return HopCount(limit, count), pos


def read_hop_count(data: bytes, base: int = 0) -> HopCount:
    """Decode Hop Count block data."""
    try:
        return _whole(data, read_hop_count_item, "hop count", base)
    except BundleDecodeError as e:
        raise type(e)(e.message, e.offset + base) from None


def hop_count(bundle: Bundle) -> HopCount | None:
    """The bundle's hop limit and count, or None without a Hop Count block."""
    b = bundle.block(BlockType.HOP_COUNT)
    return None if b is None else read_hop_count(b.data)


def set_hop_count(bundle: Bundle, limit: int, count: int) -> Bundle:
    """A copy whose Hop Count block says ``[limit, count]`` (added if missing)."""
    if not 1 <= limit <= 255 or not 0 <= count <= UINT64_MAX:
        raise BundleEncodeError(f"hop limit must be 1..255 and count >= 0, got {limit}, {count}")
    return bundle.with_extension(BlockType.HOP_COUNT, b"\x82" + cbor.uint(limit) + cbor.uint(count))


def bundle_age_ms(bundle: Bundle) -> int | None:
    """The Bundle Age block's value in ms, or None without one."""
    b = bundle.block(BlockType.BUNDLE_AGE)
    return None if b is None else read_bundle_age(b.data)


def set_bundle_age(bundle: Bundle, age_ms: int) -> Bundle:
    """A copy whose Bundle Age block says ``age_ms`` (added if missing)."""
    if not 0 <= age_ms <= UINT64_MAX:
        raise BundleEncodeError(f"bundle age must be 0..2^64-1 ms, got {age_ms}")
    return bundle.with_extension(BlockType.BUNDLE_AGE, cbor.uint(age_ms))


def previous_node(bundle: Bundle) -> Eid | None:
    """The node that forwarded this bundle here, or None without a Previous Node block."""
    b = bundle.block(BlockType.PREVIOUS_NODE)
    return None if b is None else read_previous_node(b.data)


def set_previous_node(bundle: Bundle, node: Eid) -> Bundle:
    """A copy whose Previous Node block names ``node`` (added if missing)."""
    return bundle.with_extension(BlockType.PREVIOUS_NODE, node.to_cbor())
