"""Hypothesis strategies for random valid bundles (shared by the bundle tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from hilnet.bundle import cbor
from hilnet.bundle.blocks import (
    MAX_BUNDLE_TIME_MS,
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    PrimaryBlock,
    set_bundle_age,
)
from hilnet.bundle.cos import MAX_ORDINAL, ClassOfService, Priority, encode_cos
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import NULL_EID, Eid, EidScheme

U64 = (1 << 64) - 1
# integers around the CBOR head boundaries, where shortest-form bugs live
uints = st.one_of(
    st.integers(0, 30),
    st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, U64]),
    st.integers(0, U64),
)
crc_types = st.sampled_from(list(CrcType))

ipn_eids = st.builds(lambda n, s: Eid(EidScheme.IPN, (n, s)), uints, uints)
dtn_eids = st.builds(
    lambda node, demux: Eid(EidScheme.DTN, f"//{node}/{demux}"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=20),
    st.text("".join(chr(c) for c in range(0x21, 0x7F)), max_size=20),
)
eids = st.one_of(ipn_eids, dtn_eids, st.just(NULL_EID))
node_ids = st.one_of(st.builds(lambda n: Eid(EidScheme.IPN, (n, 0)), uints), dtn_eids.map(lambda e: e.node_id))

# unknown block types (not the ones whose content the codec checks)
unknown_types = st.integers(2, 300).filter(lambda t: t not in (6, 7, 10, 193))
classes_of_service = st.builds(
    ClassOfService,
    st.sampled_from(list(Priority)),
    st.integers(0, MAX_ORDINAL),
    st.integers(0, 255),
    st.one_of(st.just(0), st.integers(0, 2**32 - 1)),
)


@st.composite
def bundles(draw, max_payload: int = 2000) -> Bundle:
    """A random bundle that RFC 9171 allows."""
    flags = draw(st.integers(0, 2**21 - 1)) & ~(BundleFlag.IS_FRAGMENT | BundleFlag.ADMIN_RECORD)
    source = draw(eids)
    if draw(st.booleans()):
        flags |= BundleFlag.ADMIN_RECORD
        flags &= ~0x074000  # no status report requests
    if source.is_null:
        flags |= BundleFlag.MUST_NOT_FRAGMENT
        flags &= ~0x074000
    payload = draw(st.binary(max_size=max_payload))
    offset = total = None
    if draw(st.booleans()):
        flags |= BundleFlag.IS_FRAGMENT
        offset = draw(st.integers(0, 10**6))
        total = offset + len(payload) + draw(st.integers(0, 10**6))
    crc = draw(crc_types)
    # creation + lifetime must end within MAX_BUNDLE_TIME_MS (a node keeps times as 64-bit ns)
    creation = draw(st.integers(0, MAX_BUNDLE_TIME_MS))
    lifetime = draw(st.integers(0, MAX_BUNDLE_TIME_MS - creation))
    primary = PrimaryBlock(
        draw(eids), source, draw(eids), creation, draw(uints), lifetime, BundleFlag(flags), crc, offset, total
    )
    no_reports = bool(flags & BundleFlag.ADMIN_RECORD) or source.is_null

    def block_flags():
        f = draw(st.integers(0, 255))
        return BlockFlag(f & ~BlockFlag.REPORT_IF_UNPROCESSABLE if no_reports else f)

    numbers = iter(draw(st.lists(st.integers(2, 2**20), unique=True, min_size=8, max_size=8)))
    blocks = []
    for _ in range(draw(st.integers(0, 3))):
        blocks.append(
            CanonicalBlock(
                draw(unknown_types), next(numbers), draw(st.binary(max_size=50)), block_flags(), draw(crc_types)
            )
        )
    if draw(st.booleans()):
        data = b"\x82" + cbor.uint(draw(st.integers(1, 255))) + cbor.uint(draw(uints))
        blocks.append(CanonicalBlock(BlockType.HOP_COUNT, next(numbers), data, block_flags(), draw(crc_types)))
    if draw(st.booleans()):
        blocks.insert(
            0,
            CanonicalBlock(
                BlockType.PREVIOUS_NODE, next(numbers), draw(node_ids).to_cbor(), block_flags(), draw(crc_types)
            ),
        )
    if draw(st.booleans()):
        data = encode_cos(draw(classes_of_service))
        blocks.append(CanonicalBlock(BlockType.QUALITY_OF_SERVICE, next(numbers), data, block_flags(), draw(crc_types)))
    blocks.append(CanonicalBlock(BlockType.PAYLOAD, 1, payload, block_flags(), draw(crc_types)))
    bundle = Bundle(primary, tuple(blocks))
    if creation == 0 or draw(st.booleans()):
        bundle = set_bundle_age(bundle, draw(uints))
    return bundle
