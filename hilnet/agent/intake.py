"""How a bundle enters a node: made for a local application, or taken from a neighbour.

Pure rules, no store and no I/O: the key a bundle is stored and reported
under, the creation timestamps of new bundles, when a bundle expires, and
the per-hop changes (hop count, previous node) a received bundle gets before
it is stored. :class:`~hilnet.agent.agent.Agent` applies them.

Times: ``realtime_ns``/``now_unix_ns`` are unix ns; bundle times are DTN ms.
"""

from __future__ import annotations

from hilnet.bundle.blocks import (
    UNDERSTOOD_TYPES,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    PrimaryBlock,
    bundle_age_ms,
    dtn_ms_from_unix_ns,
    hop_count,
    set_bundle_age,
    set_hop_count,
    set_previous_node,
    unix_ns_from_dtn_ms,
)
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.cos import ClassOfService, class_of_service, set_class_of_service
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import Eid
from hilnet.bundle.rules import process_unknown_blocks
from hilnet.errors import BundleDecodeError


def bundle_key(bid: BundleId) -> str:
    """The text form of a bundle id used in the store and in events.

    ``ipn:1.0/<creation_ms>/<seq>``, plus ``/<offset>/<length>`` for a fragment.
    """
    key = f"{bid.source}/{bid.creation_ms}/{bid.sequence}"
    if bid.fragment_offset is not None:
        key += f"/{bid.fragment_offset}/{bid.fragment_length}"
    return key


class CreationCounter:
    """Creation timestamps ``(DTN ms, sequence)`` of the bundles one source makes, each unique."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._seq = 0

    def next(self, realtime_ns: int) -> tuple[int, int]:
        """The timestamp of a bundle made at unix time ``realtime_ns``."""
        ms = dtn_ms_from_unix_ns(realtime_ns)
        if ms <= self._last_ms:
            ms = self._last_ms  # same millisecond (or a clock step back): bump the sequence
            self._seq += 1
        else:
            self._seq = 0
        self._last_ms = ms
        return ms, self._seq


def new_bundle(
    source: Eid,
    dest: Eid,
    payload: bytes,
    creation: tuple[int, int],
    lifetime_ns: int,
    hop_limit: int,
    cos: ClassOfService,
    crc: CrcType = CrcType.CRC32C,
) -> Bundle:
    """A bundle a local application sends: ``creation`` from :class:`CreationCounter`, lifetime >= 1 ms.

    It always carries its class of service in a type-193 block, as ION's bundles
    do, so every hop (ION's included) queues it by class. Every block gets ``crc``.
    """
    primary = PrimaryBlock(
        destination=dest,
        source=source,
        report_to=source,
        creation_ms=creation[0],
        sequence=creation[1],
        lifetime_ms=max(1, lifetime_ns // 1_000_000),
        flags=BundleFlag.NONE,
        crc_type=crc,
    )
    # The extension blocks added below take the payload block's CRC type.
    payload_block = CanonicalBlock(BlockType.PAYLOAD, 1, payload, crc_type=crc)
    bundle = set_hop_count(Bundle(primary, (payload_block,)), hop_limit, 0)
    return set_class_of_service(bundle, cos)


def expiry_of(bundle: Bundle, now_unix_ns: int) -> int:
    """When ``bundle`` expires, unix ns.

    A source without a clock sets creation time 0 and says in the Bundle Age
    block how much of the lifetime is used (RFC 9171 4.2.7); reading its
    expiry as DTN time 0 + lifetime expired it at once on arrival.
    """
    p = bundle.primary
    if p.creation_ms:
        return unix_ns_from_dtn_ms(p.expires_ms)
    try:
        age_ms = bundle_age_ms(bundle) or 0
    except BundleDecodeError:
        age_ms = p.lifetime_ms  # an unreadable age: treat the lifetime as spent
    return now_unix_ns + (p.lifetime_ms - age_ms) * 1_000_000


def store_rank(bundle: Bundle) -> int:
    """The store's priority of a received bundle: its class-of-service rank (standard without a block).

    The codec checked the block on decode, so reading it cannot fail here.
    """
    return class_of_service(bundle).rank


def hop_limit_reached(bundle: Bundle) -> str | None:
    """Why ``bundle`` may not take one more hop, or None when it may."""
    hc = hop_count(bundle)
    if hc is not None and hc.count + 1 > hc.limit:
        return f"hop limit {hc.limit} reached"
    return None


def arrived_copy(bundle: Bundle, here: Eid) -> Bundle:
    """``bundle`` as node ``here`` stores it: one more hop counted, ``here`` its previous node."""
    hc = hop_count(bundle)
    if hc is not None:
        bundle = set_hop_count(bundle, hc.limit, hc.count + 1)
    return set_previous_node(bundle, here)


def age_at_arrival_ms(bundle: Bundle) -> int | None:
    """The Bundle Age block's ms, None without a readable one; each send adds the time held here."""
    try:
        return bundle_age_ms(bundle)
    except BundleDecodeError:
        return None


#: what an agent processes: the codec's blocks, and BPSec's, which it checks as an
#: acceptor and forwards unchanged as a relay (RFC 9172)
AGENT_UNDERSTANDS = UNDERSTOOD_TYPES | {BlockType.BLOCK_INTEGRITY, BlockType.BLOCK_CONFIDENTIALITY}


def unknown_blocks(bundle: Bundle) -> tuple[Bundle | None, str | None]:
    """Apply RFC 9171 section 4.2.4 to the blocks this agent cannot process (section 5.6 step 4).

    Returns the bundle to store (blocks flagged "discard" removed), or None
    when a block asks for the bundle's deletion, and a sentence for the event
    (None when there is nothing to say). The agent sends no status reports:
    a block asking for one is named in that sentence instead.
    """
    unknown = [b for b in bundle.blocks if b.block_type not in AGENT_UNDERSTANDS]
    if not unknown:
        return bundle, None
    verdict = process_unknown_blocks(bundle, AGENT_UNDERSTANDS)
    report = "; a status report (block unsupported) was asked for, and this agent sends none" if verdict.report else ""
    if verdict.delete:
        b = next(b for b in unknown if b.flags & BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE)
        return None, (
            f"block type {b.block_type} (number {b.number}) cannot be processed here and asks for the "
            f"bundle's deletion (RFC 9171 4.2.4, block unsupported){report}"
        )
    gone = [b for b in unknown if b.flags & BlockFlag.DISCARD_IF_UNPROCESSABLE]
    if not gone and not report:
        return verdict.bundle, None
    names = ", ".join(f"type {b.block_type} (number {b.number})" for b in gone) or "none"
    return verdict.bundle, f"blocks discarded as they cannot be processed here: {names}{report}"


def aged(data: bytes, age_ms: int, max_size: int) -> bytes:
    """Encoded bundle ``data`` with its Bundle Age block set to ``age_ms`` (age at arrival plus time held)."""
    return encode_bundle(set_bundle_age(decode_bundle(data, max_size), age_ms))
