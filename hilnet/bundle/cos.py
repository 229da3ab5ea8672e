"""The class-of-service extension block as ION's BPv7 carries it (block type 193). No I/O.

BPv7 dropped BPv6's priority bits; ION puts them back in its "Quality of
Service" block (formerly ECOS), type 193. Its block data is a definite CBOR
array of four unsigned integers::

    [flags, class, ordinal, data label]

``class`` is 0 bulk, 1 standard, 2 expedited; ``ordinal`` (0..254, higher is
more urgent) orders expedited bundles among themselves; ``flags`` are ION's QoS
flags (1 minimum latency, 2 best effort, 4 data label present, 8 reliable, 16
reliable streaming); ``data label`` is an opaque 32-bit label. ION writes the
block with the block processing flag "replicate in every fragment" (0x01) and
no "discard"/"delete" bits, so a node that does not know type 193 keeps it and
forwards it unchanged (RFC 9171 section 5.6 step 4). A bundle without the block
is standard, class 1.

One integer, the *rank*, orders bundles everywhere (store, forwarder, CLAs):
higher goes first. It is ``class * 256 + ordinal`` for expedited and
``class * 256`` otherwise: ION orders by ordinal only inside expedited.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from hilnet.bundle import cbor
from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle
from hilnet.errors import BlockError, BundleDecodeError, BundleEncodeError, CborError

__all__ = [
    "COS_BLOCK_FLAGS",
    "DEFAULT_COS",
    "DEFAULT_RANK",
    "MAX_ORDINAL",
    "ClassOfService",
    "Priority",
    "class_of_rank",
    "class_of_service",
    "encode_cos",
    "rank_of",
    "read_cos",
    "read_cos_item",
    "set_class_of_service",
]

MAX_ORDINAL = 254  # ION: "0 to 254 (most urgent)"
MAX_QOS_FLAGS = 0xFF  # ION keeps the flags in one byte
MAX_DATA_LABEL = 0xFFFF_FFFF  # ION keeps the label in an unsigned int

#: the block processing flags ION's qos_offer() gives the block
COS_BLOCK_FLAGS = BlockFlag.REPLICATE_IN_EVERY_FRAGMENT


class Priority(IntEnum):
    """The class of service (ION's BP_BULK_PRIORITY, BP_STD_PRIORITY, BP_EXPEDITED_PRIORITY)."""

    BULK = 0
    STANDARD = 1
    EXPEDITED = 2


def _problem(flags: int, priority: int, ordinal: int, label: int) -> tuple[str, int] | None:
    """The first out-of-range field as (message, field index), or None."""
    if not 0 <= flags <= MAX_QOS_FLAGS:
        return f"QoS flags must be 0..{MAX_QOS_FLAGS}, are {flags}", 0
    if not 0 <= priority <= 2:
        return f"class of service must be 0 (bulk), 1 (standard) or 2 (expedited), is {priority}", 1
    if not 0 <= ordinal <= MAX_ORDINAL:
        return f"ordinal must be 0..{MAX_ORDINAL}, is {ordinal}", 2
    if not 0 <= label <= MAX_DATA_LABEL:
        return f"data label must be 0..{MAX_DATA_LABEL}, is {label}", 3
    return None


@dataclass(frozen=True, slots=True)
class ClassOfService:
    """The content of a type-193 block. ``ordinal`` matters only for expedited bundles."""

    priority: Priority = Priority.STANDARD
    ordinal: int = 0
    flags: int = 0
    data_label: int = 0

    def __post_init__(self) -> None:
        problem = _problem(int(self.flags), int(self.priority), self.ordinal, self.data_label)
        if problem is not None:
            raise BundleEncodeError(problem[0])

    @property
    def rank(self) -> int:
        """The one ordering integer: higher is sent first (see the module docstring)."""
        return rank_of(self.priority, self.ordinal)


DEFAULT_COS = ClassOfService()


def rank_of(priority: int, ordinal: int = 0) -> int:
    """Rank of class ``priority`` (0..2) and ``ordinal``: ``class * 256 (+ ordinal if expedited)``."""
    return priority * 256 + (ordinal if priority == Priority.EXPEDITED else 0)


def class_of_rank(rank: int) -> Priority:
    """The class of service a rank belongs to."""
    return Priority(min(max(rank >> 8, 0), 2))


DEFAULT_RANK = DEFAULT_COS.rank


def encode_cos(cos: ClassOfService) -> bytes:
    """The block data of ``cos``: a CBOR array of four shortest-form unsigned integers."""
    return b"\x84" + b"".join(cbor.uint(int(v)) for v in (cos.flags, cos.priority, cos.ordinal, cos.data_label))


def read_cos_item(data: bytes, pos: int, end: int) -> tuple[ClassOfService, int]:
    """Read the block data at ``data[pos:end]``; errors carry the offset of the bad field."""
    pos = cbor.read_array_of(data, pos, end, 4, "class-of-service block data")
    values: list[int] = []
    starts: list[int] = []
    for what in ("QoS flags", "class of service", "ordinal", "data label"):
        starts.append(pos)
        v, pos = cbor.read_uint(data, pos, end, what)
        values.append(v)
    flags, priority, ordinal, label = values
    problem = _problem(flags, priority, ordinal, label)
    if problem is not None:
        raise BlockError(problem[0], starts[problem[1]])
    return ClassOfService(Priority(priority), ordinal, flags, label), pos


def read_cos(data: bytes, base: int = 0) -> ClassOfService:
    """Decode whole class-of-service block data; errors carry offsets shifted by ``base``."""
    try:
        cos, pos = read_cos_item(data, 0, len(data))
        if pos != len(data):
            raise CborError(f"class of service: {len(data) - pos} trailing bytes in the block data", pos)
        return cos
    except BundleDecodeError as e:
        raise type(e)(e.message, e.offset + base) from None


def class_of_service(bundle: Bundle) -> ClassOfService:
    """The bundle's class of service; standard (the default) without a type-193 block."""
    b = bundle.block(BlockType.QUALITY_OF_SERVICE)
    return DEFAULT_COS if b is None else read_cos(b.data)


def set_class_of_service(bundle: Bundle, cos: ClassOfService) -> Bundle:
    """A copy carrying ``cos`` in its type-193 block (added with ION's block flags if missing)."""
    return bundle.with_extension(BlockType.QUALITY_OF_SERVICE, encode_cos(cos), COS_BLOCK_FLAGS)
