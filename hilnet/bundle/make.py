"""``make_bundle``: one call from (source, destination, payload) to a valid bundle."""

from __future__ import annotations

from hilnet.bundle.blocks import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    set_bundle_age,
    set_hop_count,
)
from hilnet.bundle.cos import ClassOfService, set_class_of_service
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import NULL_EID, Eid, parse_eid


def _eid(value: Eid | str) -> Eid:
    return value if isinstance(value, Eid) else parse_eid(value)


def make_bundle(
    source: Eid | str,
    dest: Eid | str,
    payload: bytes,
    lifetime_ms: int,
    creation_ms: int | None = None,
    seq: int = 0,
    crc: CrcType = CrcType.CRC32C,
    flags: BundleFlag = BundleFlag.NONE,
    *,
    report_to: Eid | str = NULL_EID,
    hop_limit: int | None = None,
    payload_flags: BlockFlag = BlockFlag.NONE,
    cos: ClassOfService | None = None,
) -> Bundle:
    """A whole (unfragmented) bundle carrying ``payload``.

    ``creation_ms`` is DTN time (ms since 2000-01-01 UTC). None means the
    creating node has no trustworthy clock: creation time 0 and a Bundle Age
    block of 0 ms, as RFC 9171 section 4.2.7 recommends (nothing here reads
    the wall clock; callers that have one pass it). ``crc`` applies to every
    block. ``hop_limit`` (1..255) adds a Hop Count block at count 0. ``cos``
    adds ION's class-of-service block (type 193); without it the bundle is
    standard. An
    anonymous bundle (source ``dtn:none``) gets MUST_NOT_FRAGMENT as the RFC
    requires.
    """
    src = _eid(source)
    if src.is_null:
        flags |= BundleFlag.MUST_NOT_FRAGMENT
    primary = PrimaryBlock(
        _eid(dest), src, _eid(report_to), creation_ms or 0, seq, lifetime_ms, BundleFlag(flags), CrcType(crc)
    )
    bundle = Bundle(primary, (CanonicalBlock(BlockType.PAYLOAD, 1, bytes(payload), payload_flags, CrcType(crc)),))
    if creation_ms is None or creation_ms == 0:
        bundle = set_bundle_age(bundle, 0)
    if hop_limit is not None:
        bundle = set_hop_count(bundle, hop_limit, 0)
    if cos is not None:
        bundle = set_class_of_service(bundle, cos)
    return bundle
