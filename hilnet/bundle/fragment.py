"""Bundle fragmentation and reassembly (RFC 9171 sections 5.8 and 5.9), no I/O.

Offsets and lengths are bytes of the original application data unit (ADU).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle, BundleFlag, CanonicalBlock
from hilnet.errors import FragmentError


def fragment(bundle: Bundle, max_payload: int) -> list[Bundle]:
    """Split ``bundle`` into fragments of at most ``max_payload`` payload bytes each.

    A bundle whose payload already fits is returned alone and unchanged. A
    fragment is fragmented again with offsets into the original ADU. The
    fragment at ADU offset 0 keeps every extension block (when the input is
    the whole bundle or the offset-0 fragment); the others keep only blocks
    flagged REPLICATE_IN_EVERY_FRAGMENT (and the Bundle Age block when the
    creation time is 0, since such a bundle must carry one). Raises
    :class:`~hilnet.errors.FragmentError` for MUST_NOT_FRAGMENT bundles or a
    ``max_payload`` below 1.
    """
    if max_payload < 1:
        raise FragmentError(f"max_payload must be at least 1 byte, got {max_payload}")
    payload = bundle.payload
    if len(payload) <= max_payload:
        return [bundle]
    p = bundle.primary
    if p.flags & BundleFlag.MUST_NOT_FRAGMENT:
        raise FragmentError(f"bundle {bundle.id} must not be fragmented")
    if p.is_fragment:
        base, total = _extent(bundle)
    else:
        base, total = 0, len(payload)
    extensions = bundle.extension_blocks
    # A bundle without a creation time MUST carry a Bundle Age block (section
    # 4.4.2), so for such a bundle every fragment gets it, flagged or not.
    no_clock = p.creation_ms == 0
    replicated = tuple(
        b
        for b in extensions
        if b.flags & BlockFlag.REPLICATE_IN_EVERY_FRAGMENT or (no_clock and b.block_type == BlockType.BUNDLE_AGE)
    )
    pb = bundle.payload_block
    flags = p.flags | BundleFlag.IS_FRAGMENT
    out: list[Bundle] = []
    for start in range(0, len(payload), max_payload):
        offset = base + start
        primary = replace(p, flags=flags, fragment_offset=offset, total_adu_length=total)
        kept = extensions if offset == 0 else replicated
        chunk = CanonicalBlock(pb.block_type, pb.number, payload[start : start + max_payload], pb.flags, pb.crc_type)
        out.append(Bundle(primary, (*kept, chunk)))
    return out


def missing_extents(fragments: Iterable[Bundle]) -> list[tuple[int, int]]:
    """The ``(start, stop)`` byte ranges of the ADU that no fragment covers yet."""
    frags = list(fragments)
    if not frags:
        return []
    total = _total(frags)
    gaps: list[tuple[int, int]] = []
    covered = 0
    for start, f in sorted(((_extent(f)[0], f) for f in frags), key=lambda pair: pair[0]):
        if start > covered:
            gaps.append((covered, start))
        covered = max(covered, start + len(f.payload))
    if covered < total:
        gaps.append((covered, total))
    return gaps


def _extent(f: Bundle) -> tuple[int, int]:
    """``(fragment offset, total ADU length)`` of fragment ``f``, in bytes."""
    p = f.primary
    if not p.is_fragment:
        raise FragmentError(f"bundle {f.id} is not a fragment")
    if p.fragment_offset is None or p.total_adu_length is None:
        raise FragmentError(f"bundle {f.id} is flagged a fragment but lacks its offset or ADU length")
    return p.fragment_offset, p.total_adu_length


def _total(frags: list[Bundle]) -> int:
    whole = frags[0].id.whole
    total = frags[0].primary.total_adu_length
    for f in frags:
        _, length = _extent(f)
        if f.id.whole != whole:
            raise FragmentError(f"fragment {f.id} belongs to another bundle than {whole}")
        if length != total:
            raise FragmentError(f"fragment {f.id} says the ADU is {length} bytes, others say {total}")
    return length  # the same for every fragment, as just checked


def reassemble(fragments: Iterable[Bundle]) -> Bundle:
    """The original bundle rebuilt from its fragments (any order, overlaps allowed).

    The result takes its primary block (without fragment fields) and its
    extension blocks from the fragment at offset 0. Raises
    :class:`~hilnet.errors.FragmentError` when fragments are missing, belong
    to different bundles or disagree on the ADU length.
    """
    frags = list(fragments)
    if not frags:
        raise FragmentError("no fragments to reassemble")
    gaps = missing_extents(frags)
    if gaps:
        text = ", ".join(f"{a}..{b}" for a, b in gaps[:5])
        raise FragmentError(f"bundle {frags[0].id.whole}: ADU bytes missing at {text}")
    adu = bytearray(_extent(frags[0])[1])
    for f in frags:
        # material extents may overlap; RFC 9171 says they carry the same bytes
        off = _extent(f)[0]
        adu[off : off + len(f.payload)] = f.payload
    first = next(f for f in frags if f.primary.fragment_offset == 0)
    p = first.primary
    primary = replace(
        p, flags=BundleFlag(int(p.flags) & ~int(BundleFlag.IS_FRAGMENT)), fragment_offset=None, total_adu_length=None
    )
    pb = first.payload_block
    payload = replace(pb, data=bytes(adu))
    return Bundle(primary, (*first.extension_blocks, payload))
