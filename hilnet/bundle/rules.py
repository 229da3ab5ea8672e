"""What every bundle must obey (RFC 9171 sections 4.1-4.4), and what a node does with
extension blocks it does not understand (section 5.6, step 4). No I/O.

:func:`bundle_problem` is shared by the encoder, which refuses to write a bundle
that breaks a rule, and the decoder, which refuses to read one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hilnet.bundle.blocks import (
    BP_VERSION,
    MAX_BUNDLE_TIME_MS,
    PAYLOAD_BLOCK_NUMBER,
    REPORT_FLAGS,
    UINT64_MAX,
    UNDERSTOOD_TYPES,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
)

__all__ = ["UnknownBlockVerdict", "bundle_problem", "process_unknown_blocks", "time_problem"]

# at most one of each of these per bundle (sections 4.4.1-4.4.3; one class of service, as ION parses it)
_SINGLETON_TYPES = (BlockType.PREVIOUS_NODE, BlockType.BUNDLE_AGE, BlockType.HOP_COUNT, BlockType.QUALITY_OF_SERVICE)

# plain ints for the hot path: IntFlag operators cost a microsecond each
_IS_FRAGMENT = int(BundleFlag.IS_FRAGMENT)
_ADMIN_RECORD = int(BundleFlag.ADMIN_RECORD)
_MUST_NOT_FRAGMENT = int(BundleFlag.MUST_NOT_FRAGMENT)
_REPORT_FLAGS = int(REPORT_FLAGS)
_BLOCK_REPORT = int(BlockFlag.REPORT_IF_UNPROCESSABLE)


def time_problem(creation_ms: int, lifetime_ms: int) -> str | None:
    """Why a creation time and lifetime (DTN ms) cannot be kept, or None.

    Both are 64-bit in the RFC, but a node keeps expiry times as signed 64-bit
    Unix ns: creation + lifetime must stay within :data:`MAX_BUNDLE_TIME_MS`.
    """
    if creation_ms > MAX_BUNDLE_TIME_MS:
        return f"creation time {creation_ms} ms is more than 200 years after 2000-01-01"
    if lifetime_ms > MAX_BUNDLE_TIME_MS - creation_ms:
        return (
            f"lifetime {lifetime_ms} ms from creation time {creation_ms} ms ends more than 200 years "
            "after 2000-01-01 (bundle times must fit 64-bit nanoseconds)"
        )
    return None


def bundle_problem(bundle: Bundle) -> tuple[str, int] | None:
    """The first rule of RFC 9171 that ``bundle`` breaks, as ``(message, block index)``.

    Block index 0 is the primary block, ``i`` is ``bundle.blocks[i - 1]``.
    Returns None for a valid bundle. Shared by the encoder (which raises
    BundleEncodeError) and the decoder (which raises BlockError at the
    block's byte offset). The primary block is checked first, then the blocks
    in order, then the bundle age that an unknown creation time asks for.
    """
    p = bundle.primary
    flags = int(p.flags)  # plain int: IntFlag operators are slow in a hot path
    if p.version != BP_VERSION:
        return f"version must be {BP_VERSION}, is {p.version}", 0
    for name in ("creation_ms", "sequence", "lifetime_ms", "flags"):
        v = getattr(p, name)
        if not 0 <= v <= UINT64_MAX:
            return f"{name} must be 0..2^64-1, is {v}", 0
    problem_text = time_problem(p.creation_ms, p.lifetime_ms)
    if problem_text is not None:
        return problem_text, 0
    if not bundle.blocks:
        return "a bundle needs a payload block", 0
    if flags & _IS_FRAGMENT or p.fragment_offset is not None or p.total_adu_length is not None:
        problem = _fragment_problem(bundle, flags)
        if problem is not None:
            return problem
    if flags & _ADMIN_RECORD and flags & _REPORT_FLAGS:
        return "an administrative record must not request status reports", 0
    anonymous = p.source.is_null
    if anonymous and (not flags & _MUST_NOT_FRAGMENT or flags & _REPORT_FLAGS):
        return "a bundle from dtn:none must be MUST_NOT_FRAGMENT and request no status reports", 0
    problem = _blocks_problem(bundle.blocks, flags & _ADMIN_RECORD or anonymous)
    if problem is None and p.creation_ms == 0 and bundle.block(BlockType.BUNDLE_AGE) is None:
        return "creation time 0 (unknown) requires a bundle age block", 0
    return problem


def _fragment_problem(bundle: Bundle, flags: int) -> tuple[str, int] | None:
    p = bundle.primary
    if not flags & _IS_FRAGMENT:
        return "fragment_offset and total_adu_length need the IS_FRAGMENT flag", 0
    if p.fragment_offset is None or p.total_adu_length is None:
        return "a fragment needs fragment_offset and total_adu_length", 0
    if not (0 <= p.fragment_offset <= UINT64_MAX and 0 <= p.total_adu_length <= UINT64_MAX):
        return "fragment offset and ADU length must be 0..2^64-1", 0
    if p.fragment_offset + len(bundle.blocks[-1].data) > p.total_adu_length:
        return (
            f"fragment [{p.fragment_offset}+{len(bundle.blocks[-1].data)}] runs past "
            f"the ADU length {p.total_adu_length}"
        ), len(bundle.blocks)
    return None


def _blocks_problem(blocks: tuple[CanonicalBlock, ...], no_reports: int) -> tuple[str, int] | None:
    """``no_reports`` is true (non-zero) for an administrative record or an anonymous bundle: no block may ask for reports."""
    seen_numbers: set[int] = set()
    seen_types: set[int] = set()
    last = len(blocks)
    for i, b in enumerate(blocks, start=1):
        if b.block_type == BlockType.PAYLOAD:
            if i != last:
                return "the payload block must be the last block", i
            if b.number != PAYLOAD_BLOCK_NUMBER:
                return f"the payload block's number must be 1, is {b.number}", i
        elif i == last:
            return "the last block must be the payload block", i
        if not 0 <= b.block_type <= UINT64_MAX or b.block_type == 0:
            return f"block type {b.block_type} is not a canonical block type", i
        if not 1 <= b.number <= UINT64_MAX:
            return f"block number {b.number} is not valid (0 is the primary block)", i
        if not 0 <= b.flags <= UINT64_MAX:
            return f"block flags {b.flags} do not fit 64 bits", i
        if b.number in seen_numbers:
            return f"block number {b.number} is used twice", i
        seen_numbers.add(b.number)
        if b.block_type in _SINGLETON_TYPES:
            if b.block_type in seen_types:
                return f"more than one {BlockType(b.block_type).name} block", i
            seen_types.add(b.block_type)
        if no_reports and int(b.flags) & _BLOCK_REPORT:
            return "blocks of administrative records and anonymous bundles must not request reports", i
    return None


@dataclass(frozen=True, slots=True)
class UnknownBlockVerdict:
    """Outcome of :func:`process_unknown_blocks`.

    ``bundle`` is the bundle to go on with (blocks flagged "discard" removed),
    ``delete`` says the bundle must be deleted for "Block unsupported",
    ``report`` says a reception report with reason "Block unsupported" is asked for.
    """

    bundle: Bundle
    delete: bool
    report: bool


def process_unknown_blocks(bundle: Bundle, understood: frozenset[int] = UNDERSTOOD_TYPES) -> UnknownBlockVerdict:
    """Honour the processing flags of extension blocks whose type is not in ``understood``."""
    keep: list[CanonicalBlock] = []
    delete = report = False
    for b in bundle.blocks:
        if b.block_type in understood:
            keep.append(b)
            continue
        if b.flags & BlockFlag.REPORT_IF_UNPROCESSABLE:
            report = True
        if b.flags & BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE:
            delete = True
            keep.append(b)
        elif not b.flags & BlockFlag.DISCARD_IF_UNPROCESSABLE:
            keep.append(b)
    if len(keep) != len(bundle.blocks):
        bundle = replace(bundle, blocks=tuple(keep))
    return UnknownBlockVerdict(bundle, delete, report)
