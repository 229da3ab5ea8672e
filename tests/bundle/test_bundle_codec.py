"""The codec on known bytes: exact encodings, and each strict-decoding error with its offset."""

from __future__ import annotations

import cbor2
import pytest

from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle, BundleFlag, CanonicalBlock, PrimaryBlock
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.crc import CrcType, crc16_x25, crc32c
from hilnet.bundle.eid import NULL_EID, parse_eid
from hilnet.bundle.make import make_bundle
from hilnet.errors import (
    BlockError,
    BundleDecodeError,
    BundleEncodeError,
    CborError,
    CrcError,
    EidError,
    LimitError,
    VersionError,
)

SRC, DST = parse_eid("ipn:1.0"), parse_eid("ipn:2.1")


def nb(block_type: int, number: int, data: bytes) -> CanonicalBlock:
    """An extension block without CRC, so tests can find its bytes by hand."""
    return CanonicalBlock(block_type, number, data, crc_type=CrcType.NONE)


def small(crc=CrcType.NONE, payload=b"hi", **kw) -> Bundle:
    return make_bundle(SRC, DST, payload, 1000, creation_ms=5, seq=1, crc=crc, **kw)


def test_exact_bytes_without_crc():
    wire = encode_bundle(small())
    assert wire.hex() == (
        "9f"  # indefinite array
        "88"
        "07"
        "00"
        "00"  # primary: 8 items, version 7, flags 0, crc type 0
        "82028202"
        "01"  # destination [2, [2, 1]]
        "8202820100"  # source [2, [1, 0]]
        "820100"  # report-to dtn:none [1, 0]
        "820501"  # creation [5, 1]
        "1903e8"  # lifetime 1000
        "85"
        "01"
        "01"
        "00"
        "00"
        "426869"  # payload block: type 1, number 1, flags 0, crc 0, b"hi"
        "ff"
    )


@pytest.mark.parametrize("crc, size", [(CrcType.CRC16, 2), (CrcType.CRC32C, 4)])
def test_crc_is_over_the_block_with_a_zeroed_crc_field(crc, size):
    wire = encode_bundle(small(crc))
    blocks = cbor2.loads(wire)
    fn = crc16_x25 if crc == CrcType.CRC16 else crc32c
    # recompute each block's CRC independently from cbor2's re-encoding
    for block in blocks:
        value = block[-1]
        assert len(value) == size
        zeroed = cbor2.dumps(block[:-1] + [bytes(size)])
        assert int.from_bytes(value, "big") == fn(zeroed)


def test_payload_not_last_and_missing_payload_are_refused_on_encode():
    b = small()
    ext = nb(200, 2, b"x")
    with pytest.raises(BundleEncodeError, match="payload"):
        encode_bundle(Bundle(b.primary, (b.payload_block, ext)))
    with pytest.raises(BundleEncodeError, match="payload"):
        encode_bundle(Bundle(b.primary, ()))
    with pytest.raises(BundleEncodeError, match="twice"):
        encode_bundle(Bundle(b.primary, (nb(200, 1, b""), b.payload_block)))


# --- strict decoding: one test per kind of violation --------------------------------------


def wire_of(**kw) -> bytes:
    return encode_bundle(small(**kw))


def raises_at(data: bytes, cls, offset: int | None = None, **kw):
    with pytest.raises(cls) as info:
        decode_bundle(data, **kw)
    if offset is not None:
        assert info.value.offset == offset, str(info.value)
    assert f"(at byte {info.value.offset})" in str(info.value)
    return info.value


def test_not_an_array():
    raises_at(b"\x01", CborError, 0)
    raises_at(b"\x42ab", CborError, 0)


def test_definite_outer_array_is_refused():
    wire = wire_of()
    raises_at(b"\x82" + wire[1:-1], CborError, 0)


def test_indefinite_block_array_is_refused():
    wire = wire_of()
    assert wire[1] == 0x88
    raises_at(wire[:1] + b"\x9f" + wire[2:], CborError, 1)


def test_indefinite_byte_string_in_a_block_is_refused():
    wire = wire_of()
    at = wire.index(bytes.fromhex("426869"))
    bad = wire[:at] + b"\x5f\x42hi\xff" + wire[at + 3 :]
    raises_at(bad, CborError, at)


def test_wrong_major_type():
    wire = wire_of()
    # lifetime 1000 (0x1903e8) as a text string of 2 bytes instead
    at = wire.index(bytes.fromhex("1903e8"))
    bad = wire[:at] + b"\x62ab" + wire[at + 3 :]
    e = raises_at(bad, CborError, at)
    assert "lifetime" in e.message and "text string" in e.message


def test_non_shortest_integer_is_refused():
    wire = wire_of()
    at = wire.index(bytes.fromhex("1903e8"))
    bad = wire[:at] + bytes.fromhex("1a000003e8") + wire[at + 3 :]
    raises_at(bad, CborError, at)


def test_bad_version():
    wire = wire_of()
    raises_at(wire[:2] + b"\x06" + wire[3:], VersionError, 2)


def test_crc_mismatch_names_the_block_and_offset():
    wire = bytearray(wire_of(crc=CrcType.CRC32C))
    wire[-3] ^= 0x01  # inside the payload block's CRC value
    e = raises_at(bytes(wire), CrcError)
    assert e.offset == len(wire) - 5 and "block 1" in e.message
    # the payload itself corrupted: same error class
    wire2 = bytearray(wire_of(crc=CrcType.CRC16, payload=b"hello"))
    wire2[wire2.index(b"hello")] ^= 0x20
    raises_at(bytes(wire2), CrcError)
    decode_bundle(bytes(wire2), check_crc=False)  # but it is well-formed otherwise


def test_primary_crc_mismatch():
    wire = bytearray(wire_of(crc=CrcType.CRC16))
    at = wire.index(bytes.fromhex("820501"))
    wire[at + 1] = 0x06  # creation time 5 -> 6, CRC now wrong
    raises_at(bytes(wire), CrcError)


def test_missing_payload_block():
    b = small()
    ext = encode_bundle(Bundle(b.primary, (nb(200, 2, b"x"), b.payload_block)))
    # drop the payload block: the extension block is then last
    at = ext.index(bytes.fromhex("8501010000"))
    raises_at(ext[:at] + b"\xff", BlockError, ext.index(bytes.fromhex("8518c8")))
    # no canonical block at all
    raises_at(wire_of()[: ext.index(bytes.fromhex("1903e8")) + 3] + b"\xff", BlockError)


def test_payload_not_last():
    b = small()
    good = encode_bundle(Bundle(b.primary, (nb(200, 2, b"x"), b.payload_block)))
    ext_at = good.index(bytes.fromhex("8518c8"))
    pay_at = good.index(bytes.fromhex("8501010000"))
    ext, pay = good[ext_at:pay_at], good[pay_at:-1]
    swapped = good[:ext_at] + pay + ext + b"\xff"
    raises_at(swapped, BlockError, ext_at)


def test_duplicate_block_numbers():
    b = small()
    blocks = (nb(200, 2, b"x"), nb(201, 3, b"y"), b.payload_block)
    good = encode_bundle(Bundle(b.primary, blocks))
    second = good.index(bytes.fromhex("8518c903"))
    bad = good[: second + 3] + b"\x02" + good[second + 4 :]
    e = raises_at(bad, BlockError, second)
    assert "twice" in e.message


def test_two_hop_count_blocks():
    b = small(hop_limit=3)
    hc = b.block(BlockType.HOP_COUNT)
    dup = CanonicalBlock(BlockType.HOP_COUNT, 9, hc.data)
    with pytest.raises(BundleEncodeError):
        encode_bundle(Bundle(b.primary, (hc, dup, b.payload_block)))


def test_oversized_length_claims():
    wire = wire_of()
    at = wire.index(bytes.fromhex("426869"))
    # a byte string claiming 2**63 bytes
    bad = wire[:at] + b"\x5b" + (1 << 63).to_bytes(8, "big") + b"hi\xff"
    raises_at(bad, LimitError, at)
    # claiming more than is left, within the limit: truncation
    bad = wire[:at] + b"\x59\x10\x00" + b"hi\xff"
    raises_at(bad, CborError, at)


def test_size_and_block_count_limits():
    wire = wire_of(payload=bytes(1000))
    raises_at(wire, LimitError, 100, max_size=100)
    decode_bundle(wire, max_size=len(wire))
    b = small()
    many = tuple(nb(200 + i, 2 + i, b"") for i in range(5)) + (b.payload_block,)
    raises_at(encode_bundle(Bundle(b.primary, many)), LimitError, max_blocks=5)


def test_nested_depth_bomb_in_an_eid_is_a_plain_error():
    wire = wire_of()
    at = wire.index(bytes.fromhex("82028202"))
    bomb = wire[:at] + b"\x81" * 100_000 + b"\x00" + wire[at + 5 :]
    raises_at(bomb, BundleDecodeError, at)


def test_every_truncation_is_a_cbor_error():
    wire = wire_of(crc=CrcType.CRC16, hop_limit=9)
    for n in range(len(wire)):
        with pytest.raises(CborError):
            decode_bundle(wire[:n])


def test_trailing_bytes():
    wire = wire_of()
    raises_at(wire + b"\x00", CborError, len(wire))


def test_bad_eids():
    wire = wire_of()
    at = wire.index(bytes.fromhex("8202820100")) + 5  # report-to dtn:none, after the source
    raises_at(wire[:at] + bytes.fromhex("820300") + wire[at + 3 :], EidError, at + 1)  # scheme 3
    raises_at(wire[:at] + bytes.fromhex("820101") + wire[at + 3 :], EidError, at + 2)  # dtn SSP 1
    bad_text = bytes.fromhex("8201") + cbor2.dumps("no-slashes")
    raises_at(wire[:at] + bad_text + wire[at + 3 :], EidError, at + 2)
    raises_at(wire[:at] + bytes.fromhex("8201") + cbor2.dumps("none") + wire[at + 3 :], EidError)
    raises_at(wire[:at] + bytes.fromhex("8201") + b"\x62\xff\xfe" + wire[at + 3 :], CborError, at + 3)


def test_fragment_fields_must_match_the_flag():
    wire = wire_of()
    # set IS_FRAGMENT without adding the two fields: the item count is then wrong
    raises_at(wire[:3] + b"\x01" + wire[4:], BlockError, 1)


def test_admin_record_must_not_ask_for_reports():
    b = small(flags=BundleFlag.ADMIN_RECORD | BundleFlag.REPORT_DELIVERY)
    with pytest.raises(BundleEncodeError):
        encode_bundle(b)


def test_unknown_blocks_and_flag_bits_survive_a_round_trip():
    b = small(crc=CrcType.CRC16)
    odd = CanonicalBlock(
        250, 7, b"\xff\x00opaque", BlockFlag(0x80 | BlockFlag.DISCARD_IF_UNPROCESSABLE), CrcType.CRC32C
    )
    primary = PrimaryBlock(DST, SRC, NULL_EID, 5, 1, 1000, BundleFlag(1 << 40 | 0x20))
    bundle = Bundle(primary, (odd, b.payload_block))
    wire = encode_bundle(bundle)
    back = decode_bundle(wire)
    assert back.blocks[0] == odd and int(back.primary.flags) == 1 << 40 | 0x20
    assert encode_bundle(back) == wire


def test_bytearray_and_memoryview_input():
    wire = wire_of(crc=CrcType.CRC32C)
    assert decode_bundle(bytearray(wire)) == decode_bundle(memoryview(wire)) == small(CrcType.CRC32C)


def _times_wire(creation: bytes, lifetime: bytes) -> bytes:
    primary = b"\x88\x07\x00\x00\x82\x02\x82\x02\x01\x82\x02\x82\x01\x00\x82\x02\x82\x01\x00\x82" + creation + b"\x00"
    return b"\x9f" + primary + lifetime + b"\x85\x01\x01\x00\x00\x42hi\xff"


def test_times_a_node_cannot_keep_are_refused_at_their_offset():
    # 21 = offset of the creation time, 31 = of the lifetime (after it and the sequence number)
    big = b"\x1b" + (1 << 63).to_bytes(8, "big")
    with pytest.raises(LimitError, match="lifetime .* more than 200 years") as e:
        decode_bundle(_times_wire(b"\x1b" + (10**12).to_bytes(8, "big"), big))
    assert e.value.offset == 31
    with pytest.raises(LimitError, match="creation time .* more than 200 years") as e:
        decode_bundle(_times_wire(big, b"\x01"))
    assert e.value.offset == 21
    ok = _times_wire(b"\x1b" + (10**12).to_bytes(8, "big"), b"\x1a\x05\x26\x5c\x00")  # 1 day from 2031
    assert decode_bundle(ok).primary.lifetime_ms == 86_400_000
    with pytest.raises(BundleEncodeError, match="200 years"):
        encode_bundle(make_bundle(SRC, DST, b"hi", 1 << 62, creation_ms=5))
