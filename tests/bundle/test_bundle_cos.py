"""ION's class-of-service block (type 193): encoding, strict decoding, CLI, and what Wireshark makes of it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from hilnet.bundle import cbor
from hilnet.bundle.blocks import BlockFlag, BlockType
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.cos import (
    COS_BLOCK_FLAGS,
    DEFAULT_RANK,
    ClassOfService,
    Priority,
    class_of_rank,
    class_of_service,
    encode_cos,
    rank_of,
    read_cos,
    set_class_of_service,
)
from hilnet.bundle.make import make_bundle
from hilnet.bundle.rules import process_unknown_blocks
from hilnet.commands.bundle import command
from hilnet.errors import BlockError, BundleDecodeError, BundleEncodeError, CborError
from tests.bundle.bundle_strategies import classes_of_service


def _bundle(cos: ClassOfService | None = None):
    return make_bundle("ipn:1.0", "ipn:5.0", b"tweet", 60_000, creation_ms=1000, seq=3, cos=cos)


def test_encoding_is_ions_four_integer_array():
    # [flags, class, ordinal, data label], each in shortest form, as bpq.c's qos_serialize writes it
    assert encode_cos(ClassOfService(Priority.EXPEDITED, 7)) == bytes([0x84, 0, 2, 7, 0])
    assert encode_cos(ClassOfService(Priority.BULK, 0, 4, 70000)) == b"\x84\x04\x00\x00\x1a\x00\x01\x11\x70"
    b = _bundle(ClassOfService(Priority.EXPEDITED, 200))
    block = b.block(BlockType.QUALITY_OF_SERVICE)
    assert block is not None and block.flags == BlockFlag.REPLICATE_IN_EVERY_FRAGMENT == COS_BLOCK_FLAGS
    assert block.data == b"\x84\x00\x02\x18\xc8\x00"


def test_a_bundle_without_the_block_is_standard():
    assert class_of_service(_bundle()).priority is Priority.STANDARD
    assert class_of_service(_bundle()).rank == DEFAULT_RANK == rank_of(Priority.STANDARD)


def test_rank_orders_classes_then_ordinal_inside_expedited_only():
    ranks = [
        rank_of(Priority.BULK, 200),
        rank_of(Priority.STANDARD, 100),
        rank_of(Priority.EXPEDITED, 0),
        rank_of(Priority.EXPEDITED, 1),
        rank_of(Priority.EXPEDITED, 254),
    ]
    assert ranks == sorted(ranks) and len(set(ranks)) == 5
    assert rank_of(Priority.BULK, 200) == rank_of(Priority.BULK, 0)  # ION orders by ordinal inside expedited only
    assert [class_of_rank(r) for r in ranks] == [Priority.BULK, Priority.STANDARD] + [Priority.EXPEDITED] * 3


@given(classes_of_service)
def test_block_round_trips(cos):
    assert read_cos(encode_cos(cos)) == cos
    wire = encode_bundle(set_class_of_service(_bundle(), cos))
    decoded = decode_bundle(wire)
    assert class_of_service(decoded) == cos
    assert encode_bundle(decoded) == wire


@pytest.mark.parametrize(
    ("data", "error", "offset", "words"),
    [
        (b"\x83\x00\x02\x07", CborError, 0, "4 items"),  # three items
        (b"\x85\x00\x02\x07\x00\x00", CborError, 0, "4 items"),
        (b"\x84\x00\x03\x07\x00", BlockError, 2, "class of service must be 0"),
        (b"\x84\x00\x02\x18\xff\x00", BlockError, 3, "ordinal must be 0..254"),
        (b"\x84\x19\x01\x00\x01\x00\x00", BlockError, 1, "QoS flags must be 0..255"),
        (b"\x84\x00\x02\x07\x1b\x00\x00\x00\x01\x00\x00\x00\x00", BlockError, 4, "data label"),
        (b"\x84\x00\x22\x07\x00", CborError, 2, "class of service"),  # a negative integer
        (b"\x84\x00\x02\x07", CborError, 4, "truncated"),
        (b"\x9f\x00\x02\x07\x00\xff", CborError, 0, "definite"),
        (b"\x84\x00\x02\x07\x00\x00", CborError, 5, "trailing"),
    ],
)
def test_mutated_block_data_is_refused_at_its_byte(data, error, offset, words):
    with pytest.raises(error) as e:
        read_cos(data, base=100)
    assert e.value.offset == 100 + offset and words in str(e.value), str(e.value)
    # and inside a whole bundle, at the same byte of the wire
    good = set_class_of_service(_bundle(), ClassOfService(Priority.EXPEDITED, 7))
    wire = encode_bundle(good)
    at = wire.index(encode_cos(ClassOfService(Priority.EXPEDITED, 7)))
    head_len = len(cbor.head(cbor.BYTES, 5))
    block_start = at - head_len
    bad = wire[:block_start] + cbor.head(cbor.BYTES, len(data)) + data + wire[at + 5 :]
    with pytest.raises(BundleDecodeError) as e2:
        decode_bundle(bad, check_crc=False)
    assert isinstance(e2.value, error)
    assert e2.value.offset == block_start + len(cbor.head(cbor.BYTES, len(data))) + offset, str(e2.value)


@given(st.binary(min_size=1, max_size=12))
def test_random_block_data_decodes_or_raises_a_decode_error(data):
    try:
        cos = read_cos(data)
    except BundleDecodeError:
        return
    assert encode_cos(cos) == data  # what is accepted is exactly the shortest form


def test_two_blocks_are_refused_and_values_out_of_range_cannot_be_built():
    b = _bundle(ClassOfService(Priority.BULK))
    twice = b.with_extension(194, b"")  # a free number, then make it a second 193
    blocks = list(twice.blocks)
    blocks[1] = type(blocks[1])(BlockType.QUALITY_OF_SERVICE, blocks[1].number, encode_cos(ClassOfService()))
    with pytest.raises(BundleEncodeError, match="more than one QUALITY_OF_SERVICE"):
        encode_bundle(type(b)(b.primary, tuple(blocks)))
    for bad in ({"ordinal": 255}, {"flags": 256}, {"data_label": -1}, {"priority": 3}):
        with pytest.raises(BundleEncodeError):
            ClassOfService(**bad)


def test_a_node_that_does_not_know_193_forwards_it_unchanged():
    b = _bundle(ClassOfService(Priority.EXPEDITED, 9))
    verdict = process_unknown_blocks(b, understood=frozenset({BlockType.PAYLOAD}))
    assert verdict.bundle == b and not verdict.delete and not verdict.report


def _cli(*args):
    return CliRunner().invoke(command, list(args), catch_exceptions=False)


def test_make_with_class_and_show(tmp_path):
    out = tmp_path / "b.bundle"
    r = _cli(
        "make", "--source", "ipn:1.0", "--dest", "ipn:5.0", "--size", "400", "--class", "expedited", "--ordinal", "7",
        "--out", str(out),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert class_of_service(decode_bundle(out.read_bytes())) == ClassOfService(Priority.EXPEDITED, 7)
    d = json.loads(_cli("show", "--json", str(out)).output)
    assert d["class_of_service"] == "expedited"
    (qos,) = [b for b in d["blocks"] if b["type"] == 193]
    assert qos["type_name"] == "QUALITY_OF_SERVICE" and qos["class"] == "expedited" and qos["ordinal"] == 7
    assert qos["flag_names"] == ["REPLICATE_IN_EVERY_FRAGMENT"]
    text = _cli("show", str(out)).output
    assert "class       expedited" in text and "QUALITY_OF_SERVICE (type 193)" in text and "ordinal 7" in text
    plain = tmp_path / "p.bundle"
    assert _cli("make", "--source", "ipn:1.0", "--dest", "ipn:5.0", "--size", "4", "--out", str(plain)).exit_code == 0
    assert json.loads(_cli("show", "--json", str(plain)).output)["class_of_service"] == "standard"


def test_make_refuses_an_ordinal_without_expedited(tmp_path):
    r = CliRunner().invoke(
        command,
        ["make", "--source", "ipn:1.0", "--dest", "ipn:5.0", "--size", "4", "--ordinal", "3", "--class", "bulk"],
    )
    assert r.exit_code == 2 and "--class expedited" in r.output
    r = CliRunner().invoke(
        command, ["make", "--source", "ipn:1.0", "--dest", "ipn:5.0", "--size", "4", "--class", "expedited",
                  "--ordinal", "255"],
    )  # fmt: skip
    assert r.exit_code == 2 and "255" in r.output


def test_wireshark_shows_the_block_without_marking_the_bundle_malformed(tmp_path):
    from tests.bundle.test_bundle_tshark import HARMLESS_EXPERT, TSHARK, _dissect

    if TSHARK is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    bundles = [_bundle(ClassOfService(p, o)) for p, o in ((Priority.EXPEDITED, 7), (Priority.BULK, 0))]
    rows = _dissect(tmp_path, [encode_bundle(b) for b in bundles])
    for b, row in zip(bundles, rows):
        assert row["_ws.malformed"] == [], row
        assert [e for e in row["_ws.expert"] if e != HARMLESS_EXPERT] == [], row
        assert row["bpv7.canonical.type_code"] == [str(x.block_type) for x in b.blocks]
        assert "193" in row["bpv7.canonical.type_code"]
        assert row["bpv7.crc_status"] == ["1"] * (1 + len(b.blocks))


def test_every_fragment_keeps_the_class():
    from hilnet.bundle.fragment import fragment

    whole = make_bundle("ipn:1.0", "ipn:5.0", bytes(5000), 60_000, creation_ms=9, cos=ClassOfService(Priority.BULK))
    parts = fragment(whole, 2000)
    assert len(parts) >= 3
    assert all(class_of_service(decode_bundle(encode_bundle(p))).priority is Priority.BULK for p in parts)
