"""CRCs, EIDs, extension-block helpers, fragments and status reports."""

from __future__ import annotations

import os

import pytest
from bundle_strategies import bundles
from hypothesis import given, settings
from hypothesis import strategies as st

from hilnet.bundle.admin import (
    ReasonCode,
    StatusItem,
    StatusReport,
    UnknownRecord,
    decode_admin_record,
    encode_status_report,
    report_bundle,
    status_report_for,
)
from hilnet.bundle.blocks import (
    BlockFlag,
    BlockType,
    BundleFlag,
    BundleId,
    bundle_age_ms,
    dtn_ms_from_unix_ns,
    hop_count,
    previous_node,
    set_bundle_age,
    set_hop_count,
    set_previous_node,
    unix_ns_from_dtn_ms,
)
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.crc import CrcType, crc16_x25, crc16_x25_stdlib, crc32c
from hilnet.bundle.eid import NULL_EID, Eid, parse_eid
from hilnet.bundle.fragment import fragment, missing_extents, reassemble
from hilnet.bundle.make import make_bundle
from hilnet.bundle.rules import process_unknown_blocks
from hilnet.errors import BlockError, BundleDecodeError, BundleEncodeError, FragmentError, InputError


def x25_bitwise(data: bytes) -> int:
    """CRC-16/X.25 straight from its definition: reflected poly 0x8408, init and xorout 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_crc_check_values():
    assert crc16_x25(b"123456789") == 0x906E == crc16_x25_stdlib(b"123456789")
    assert crc32c(b"123456789") == 0xE3069283
    # RFC 7143 appendix A.4 (the RFC 9171 reference for CRC-32C examples)
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


@given(st.binary(max_size=600), st.integers(0, 600))
@settings(max_examples=300)
def test_crc16_implementations_agree_and_continue(data, split):
    want = x25_bitwise(data)
    assert crc16_x25(data) == want == crc16_x25_stdlib(data)
    a, b = data[:split], data[split:]
    assert crc16_x25(b, crc16_x25(a)) == want == crc16_x25_stdlib(b, crc16_x25_stdlib(a))
    assert crc32c(b, crc32c(a)) == crc32c(data)


def test_crc16_on_a_mebibyte():
    data = os.urandom(1 << 20)
    assert crc16_x25(data) == crc16_x25_stdlib(data)


@pytest.mark.parametrize(
    "text",
    ["ipn:1.0", "ipn:18446744073709551615.7", "dtn://ground/photos", "dtn://node/", "dtn://n/~group", "dtn:none"],
)
def test_eid_text_round_trip(text):
    eid = parse_eid(text)
    assert str(eid) == text and parse_eid(str(eid)) == eid and hash(eid) == hash(parse_eid(text))


@pytest.mark.parametrize(
    "text",
    [
        "ipn:1",
        "ipn:-1.0",
        "ipn:1.2.3",
        "ipn:18446744073709551616.0",
        "dtn:",
        "dtn://",
        "dtn://node",
        "dtn:/node/x",
        "dtn://no de/x",
        "http://x/",
        "",
        "ipn:1.0 ",
        # canonical decimal only (RFC 9758): one spelling per EID
        "ipn:01.0",
        "ipn:1.00",
        "ipn:00.0",
        "ipn:\u0661.0",
        "ipn:+1.0",
    ],
)
def test_eid_text_rejected(text):
    with pytest.raises(InputError):
        parse_eid(text)


def test_eid_properties_and_order():
    assert NULL_EID.is_null and not NULL_EID.is_singleton
    assert parse_eid("ipn:5.3").node_id == parse_eid("ipn:5.0") and parse_eid("ipn:5.0").is_node_id
    assert parse_eid("dtn://gs/photos").node_id == parse_eid("dtn://gs/")
    assert not parse_eid("dtn://gs/~all").is_singleton
    assert sorted(map(parse_eid, ["ipn:2.0", "dtn://b/", "ipn:1.5", "dtn:none"])) == list(
        map(parse_eid, ["dtn://b/", "dtn:none", "ipn:1.5", "ipn:2.0"])
    )
    assert parse_eid("ipn:1.0") != parse_eid("dtn://1/")
    assert Eid.ipn(3, 4).to_cbor() == bytes.fromhex("8202820304")
    assert NULL_EID.to_cbor() == bytes.fromhex("820100")


def test_dtn_time():
    assert dtn_ms_from_unix_ns(946_684_800 * 10**9) == 0
    assert unix_ns_from_dtn_ms(1500) == (946_684_800 * 1000 + 1500) * 10**6


def test_extension_helpers():
    b = make_bundle("ipn:1.0", "ipn:2.1", b"data", 1000, creation_ms=77)
    assert hop_count(b) is None and bundle_age_ms(b) is None and previous_node(b) is None
    b2 = set_previous_node(set_bundle_age(set_hop_count(b, 30, 0), 1234), parse_eid("ipn:9.0"))
    b3 = set_hop_count(b2, 30, 1)
    assert hop_count(b3).count == 1 and hop_count(b3).limit == 30 and not hop_count(b3).exceeded
    assert bundle_age_ms(b3) == 1234 and previous_node(b3) == parse_eid("ipn:9.0")
    assert [blk.number for blk in b3.blocks] == [2, 3, 4, 1]  # updated in place, payload last
    assert decode_bundle(encode_bundle(b3)) == b3
    assert b3.without(BlockType.HOP_COUNT).block(BlockType.HOP_COUNT) is None
    with pytest.raises(BundleEncodeError):
        set_hop_count(b, 0, 0)


def test_no_clock_means_creation_zero_with_an_age_block():
    b = make_bundle("ipn:1.0", "ipn:2.1", b"x", 1000)
    assert b.primary.creation_ms == 0 and bundle_age_ms(b) == 0
    with pytest.raises(BundleEncodeError, match="bundle age"):
        encode_bundle(b.without(BlockType.BUNDLE_AGE))


def test_bad_extension_content_is_a_decode_error():
    b = make_bundle("ipn:1.0", "ipn:2.1", b"x", 1000, creation_ms=1, crc=CrcType.NONE)
    bad = b.with_extension(BlockType.HOP_COUNT, b"\x82\x00\x00")  # hop limit 0
    with pytest.raises(BlockError, match="hop limit"):
        decode_bundle(encode_bundle(bad))
    bad = b.with_extension(BlockType.BUNDLE_AGE, b"\x01\x02")  # trailing byte
    with pytest.raises(BundleDecodeError, match="trailing"):
        decode_bundle(encode_bundle(bad))


def test_unknown_block_flags_are_honoured():
    b = make_bundle("ipn:1.0", "ipn:2.1", b"x", 1000, creation_ms=1)
    keep = b.with_extension(200, b"k")
    v = process_unknown_blocks(keep)
    assert v.bundle == keep and not v.delete and not v.report
    drop = b.with_extension(201, b"d", BlockFlag.DISCARD_IF_UNPROCESSABLE | BlockFlag.REPORT_IF_UNPROCESSABLE)
    v = process_unknown_blocks(drop)
    assert v.bundle.block(201) is None and v.report and not v.delete
    kill = b.with_extension(202, b"x", BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE | BlockFlag.DISCARD_IF_UNPROCESSABLE)
    assert process_unknown_blocks(kill).delete


@given(bundles(max_payload=3000), st.integers(1, 700))
@settings(max_examples=150)
def test_fragment_and_reassemble(bundle, size):
    if bundle.primary.flags & BundleFlag.MUST_NOT_FRAGMENT and len(bundle.payload) > size:
        with pytest.raises(FragmentError):
            fragment(bundle, size)
        return
    parts = fragment(bundle, size)
    for part in parts:
        assert len(part.payload) <= size
        assert decode_bundle(encode_bundle(part)) == part  # each fragment is a valid bundle
    if len(parts) == 1:
        assert parts == [bundle]
        return
    ids = {p.id for p in parts}
    assert len(ids) == len(parts) and all(i.whole == bundle.id.whole for i in ids)
    assert b"".join(p.payload for p in parts) == bundle.payload
    if bundle.primary.is_fragment:
        start = bundle.primary.fragment_offset
        assert [p.primary.fragment_offset for p in parts] == list(range(start, start + len(bundle.payload), size))
    else:
        assert reassemble(reversed(parts)) == bundle
    zero = [p for p in parts if p.primary.fragment_offset == 0]
    for p in parts:
        if p not in zero:  # only replicate-flagged extension blocks go beyond offset 0
            assert all(
                b.flags & BlockFlag.REPLICATE_IN_EVERY_FRAGMENT or b.block_type == BlockType.BUNDLE_AGE
                for b in p.extension_blocks
            )


def test_reassembly_gaps_overlaps_and_mismatches():
    b = make_bundle("ipn:1.0", "ipn:2.1", bytes(range(100)), 1000, creation_ms=9)
    parts = fragment(b, 30)
    with pytest.raises(FragmentError, match="30..60"):
        reassemble([parts[0], parts[2], parts[3]])
    assert missing_extents([parts[0], parts[3]]) == [(30, 90)]
    overlapping = fragment(b, 45)  # 0-45, 45-90, 90-100, overlapping the 30-byte ones
    assert reassemble([parts[0], overlapping[1], parts[3], overlapping[0]]) == b
    other = fragment(make_bundle("ipn:1.0", "ipn:2.1", bytes(100), 1000, creation_ms=10), 30)
    with pytest.raises(FragmentError, match="another bundle"):
        reassemble([parts[0], other[1]])
    with pytest.raises(FragmentError):
        reassemble([b])
    # a fragment of a fragment keeps offsets into the original ADU
    sub = fragment(parts[1], 7)
    assert [s.primary.fragment_offset for s in sub] == [30, 37, 44, 51, 58]
    assert reassemble([parts[0], *sub, parts[2], parts[3]]) == b


def test_status_report_round_trip_and_bytes():
    subject = make_bundle(
        "ipn:1.0", "ipn:2.1", bytes(10), 1000, creation_ms=5000, seq=1, flags=BundleFlag.STATUS_TIME_REQUESTED
    )
    rep = status_report_for(subject, delivered=True, now_ms=6000)
    assert rep.delivered == StatusItem(True, 6000) and rep.received == StatusItem()
    wire = encode_status_report(rep)
    assert wire.hex() == "8201848481f481f482f519177081f40082028201008219138801"
    assert decode_admin_record(wire) == rep
    frag = StatusReport(
        BundleId(parse_eid("dtn://a/"), 1, 2, 300, 100), deleted=StatusItem(True), reason=ReasonCode.HOP_LIMIT_EXCEEDED
    )
    assert decode_admin_record(encode_status_report(frag)) == frag
    carrier = report_bundle(
        frag, source=parse_eid("ipn:3.0"), destination=parse_eid("ipn:1.0"), creation_ms=1, sequence=0, lifetime_ms=1000
    )
    assert decode_admin_record(decode_bundle(encode_bundle(carrier)).payload) == frag


def test_admin_record_errors_and_unknown_types():
    assert decode_admin_record(bytes.fromhex("8205a10102")) == UnknownRecord(5, bytes.fromhex("a10102"))
    for bad in ["", "8101", "820180", "8201858481f581f481f481f40082028201008200010000", "82018484f5"]:
        with pytest.raises(BundleDecodeError):
            decode_admin_record(bytes.fromhex(bad))
    with pytest.raises(BundleDecodeError):  # depth bomb in an extensible part
        decode_admin_record(b"\x82\x05" + b"\x81" * 1000 + b"\x00")
