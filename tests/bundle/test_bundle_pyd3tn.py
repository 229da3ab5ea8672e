"""Interoperability with pyd3tn, an independent BPv7 implementation (µD3TN's Python tools)."""

from __future__ import annotations

import itertools

import pytest

from hilnet.bundle.blocks import BundleFlag, bundle_age_ms, hop_count, previous_node
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import parse_eid
from hilnet.bundle.make import make_bundle

p7 = pytest.importorskip("pyd3tn.bundle7", reason="pyd3tn (test extra) is not installed")

DTN_EPOCH_UNIX_S = 946_684_800
THEIR_CRC = {CrcType.NONE: p7.CRCType.NONE, CrcType.CRC16: p7.CRCType.CRC16, CrcType.CRC32C: p7.CRCType.CRC32}

CASES = list(
    itertools.product(
        [CrcType.NONE, CrcType.CRC16, CrcType.CRC32C],
        [b"", b"photo", bytes(range(256)) * 300],
        [("ipn:1.0", "ipn:4.1"), ("dtn://iss/", "dtn://cologne/photos")],
    )
)


@pytest.mark.parametrize("crc, payload, eids", CASES)
def test_ours_decode_in_pyd3tn_with_matching_crcs(crc, payload, eids):
    src, dst = eids
    bundle = make_bundle(
        src, dst, payload, 3_600_000, creation_ms=5000, seq=7, crc=crc, flags=BundleFlag.REPORT_DELIVERY, hop_limit=12
    )
    theirs = p7.Bundle.parse(encode_bundle(bundle))
    pb = theirs.primary_block
    assert str(pb.source) == src and str(pb.destination) == dst and str(pb.report_to) == "dtn:none"
    assert pb.creation_time[0] == 5000 and pb.creation_time.sequence_number == 7
    assert pb.lifetime == 3_600_000 and pb.bundle_proc_flags == BundleFlag.REPORT_DELIVERY
    assert theirs.payload_block.data == payload
    hop = [b for b in theirs.blocks if b.block_type == p7.BlockType.HOP_COUNT]
    assert len(hop) == 1 and hop[0].data == b"\x82\x0c\x00"
    # pyd3tn does not verify CRCs when parsing: recompute them its way and compare
    for block in theirs:
        assert block.crc_type == THEIR_CRC[crc]
        if crc != CrcType.NONE:
            assert block.calculate_crc() == block.crc_provided


@pytest.mark.parametrize(
    "crc_primary, crc_canonical",
    [
        (CrcType.CRC32C, CrcType.CRC16),
        (CrcType.CRC16, CrcType.CRC32C),
        (CrcType.CRC16, CrcType.NONE),
    ],
)
def test_theirs_decode_in_ours_and_reencode_identically(crc_primary, crc_canonical):
    wire = p7.serialize_bundle7(
        "ipn:1.0",
        "dtn://ground/x",
        b"payload from pyd3tn",
        report_to_eid="ipn:1.0",
        crc_type_primary=THEIR_CRC[crc_primary],
        crc_type_canonical=THEIR_CRC[crc_canonical],
        creation_timestamp=DTN_EPOCH_UNIX_S + 12,
        sequence_number=3,
        lifetime=60,
        hop_limit=20,
        hop_count=2,
        bundle_age=1.5,
        previous_node_eid="ipn:9.0",
    )
    ours = decode_bundle(wire)
    p = ours.primary
    assert p.source == parse_eid("ipn:1.0") and p.destination == parse_eid("dtn://ground/x")
    assert p.report_to == parse_eid("ipn:1.0") and p.creation_ms == 12_000 and p.sequence == 3
    assert p.lifetime_ms == 60_000 and p.crc_type == crc_primary
    assert ours.payload == b"payload from pyd3tn" and ours.payload_block.crc_type == crc_canonical
    assert hop_count(ours).limit == 20 and hop_count(ours).count == 2
    assert bundle_age_ms(ours) == 1500 and previous_node(ours) == parse_eid("ipn:9.0")
    assert encode_bundle(ours) == wire


def test_theirs_fragment_decodes_in_ours():
    wire = p7.serialize_bundle7(
        "ipn:1.0",
        "ipn:2.0",
        b"middle",
        creation_timestamp=DTN_EPOCH_UNIX_S + 1,
        sequence_number=0,
        flags=p7.BundleProcFlag.IS_FRAGMENT,
        fragment_offset=10,
        total_adu_length=100,
    )
    ours = decode_bundle(wire)
    assert ours.id.fragment_offset == 10 and ours.id.fragment_length == 6
    assert ours.primary.total_adu_length == 100 and encode_bundle(ours) == wire


def test_corrupted_pyd3tn_bundle_is_caught_by_our_crc_check():
    wire = bytearray(
        p7.serialize_bundle7(
            "ipn:1.0", "ipn:2.0", b"abcdef", creation_timestamp=DTN_EPOCH_UNIX_S + 1, sequence_number=0
        )
    )
    wire[wire.index(b"abcdef")] ^= 1
    from hilnet.errors import CrcError

    with pytest.raises(CrcError):
        decode_bundle(bytes(wire))
