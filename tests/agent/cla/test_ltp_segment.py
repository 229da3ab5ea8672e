"""LTP segment codec (RFC 5326 section 3): every segment type both ways, SDNVs, extensions, bad input."""

from __future__ import annotations

import pytest

from hilnet.agent.cla.ltp_segment import (
    MAX_CLAIMS,
    Cancel,
    CancelAck,
    CancelReason,
    Claim,
    DataSeg,
    Extension,
    ReportAck,
    ReportSeg,
    Segment,
    SegType,
    check_report,
    decode,
    encode,
    sdnv,
)
from hilnet.errors import WireError

# RFC 6256 section 2.1 (SDNV): the worked examples.
SDNV_EXAMPLES = [(0x7F, "7f"), (0xABC, "953c"), (0x1234, "a434"), (0x4234, "818434"), (0, "00")]


@pytest.mark.parametrize(("value", "wire"), SDNV_EXAMPLES)
def test_sdnv_examples_of_rfc_6256(value: int, wire: str) -> None:
    assert sdnv(value).hex() == wire
    seg = Segment(SegType.REPORT_ACK, 1, 1, ReportAck(value))
    assert decode(encode(seg)).content == ReportAck(value)


ALL = [
    Segment(SegType.RED, 7, 300, DataSeg(1, 0, b"abc")),
    Segment(SegType.RED_CP, 7, 300, DataSeg(1, 3, b"de", 12, 0)),
    Segment(SegType.RED_CP_EORP, 7, 300, DataSeg(1, 5, b"f", 13, 4)),
    Segment(SegType.RED_CP_EORP_EOB, 2**40, 2**33, DataSeg(1, 2**20, b"x" * 1400, 2**14, 2**14 + 1)),
    Segment(SegType.GREEN, 7, 300, DataSeg(1, 6, b"gg")),
    Segment(SegType.GREEN_EOB, 7, 300, DataSeg(1, 8, b"")),
    Segment(SegType.REPORT, 7, 300, ReportSeg(5, 13, 9000, 100, (Claim(0, 1400), Claim(2800, 6100)))),
    Segment(SegType.REPORT, 7, 300, ReportSeg(6, 0, 0, 0, ())),
    Segment(SegType.REPORT_ACK, 7, 300, ReportAck(5)),
    Segment(SegType.CANCEL_FROM_SENDER, 7, 300, Cancel(CancelReason.USR_CNCLD)),
    Segment(SegType.CANCEL_ACK_TO_SENDER, 7, 300, CancelAck()),
    Segment(SegType.CANCEL_FROM_RECEIVER, 7, 300, Cancel(CancelReason.RXMTCYCEXC)),
    Segment(SegType.CANCEL_ACK_TO_RECEIVER, 7, 300, CancelAck()),
]


@pytest.mark.parametrize("seg", ALL, ids=lambda s: s.type.name)
def test_every_segment_type_round_trips(seg: Segment) -> None:
    assert decode(encode(seg)) == seg


def test_header_and_trailer_extensions_are_read_and_kept() -> None:
    seg = Segment(
        SegType.RED_CP_EORP_EOB,
        1,
        2,
        DataSeg(1, 0, b"bundle", 3, 0),
        headers=(Extension(0x00, b"auth"), Extension(0x01, b"\x05")),
        trailers=(Extension(0x00, b"x" * 200),),
    )
    wire = encode(seg)
    assert wire[3] == 0x21  # two header extensions, one trailer extension
    assert decode(wire) == seg


def test_a_segment_as_ion_writes_it() -> None:
    # Written out by hand from RFC 5326 3.1-3.2: version 0, type 3 (red CP EORP EOB), engine 5,
    # session 1000 (SDNV 87 68), no extensions, client service 1, offset 0, length 4,
    # checkpoint serial 8000 (SDNV be 40), report serial 0, data.
    wire = bytes.fromhex("03 05 8768 00 01 00 04 be40 00 deadbeef")
    seg = decode(wire)
    assert seg == Segment(SegType.RED_CP_EORP_EOB, 5, 1000, DataSeg(1, 0, bytes.fromhex("deadbeef"), 8000, 0))
    assert encode(seg) == wire


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("", "truncated"),
        ("13 01 01 00", "bad_version"),
        ("05 01 01 00", "undefined_segment_type"),
        ("0a 01 01 00", "undefined_segment_type"),
        ("00 01", "truncated"),
        ("00 01 01 00 01 00 05 6162", "length_past_end"),  # 5 octets of data announced, 2 there
        ("00 01 01 10 00 7f 41", "length_past_end"),  # a header extension of 127 octets, 1 there
        ("00 " + "ff" * 11 + "01 01 00", "sdnv_too_long"),
        ("09 01 01 00 05 00", "trailing_octets"),
        ("0c 01 01 00 09", "unknown_cancel_reason"),
        ("08 01 01 00 01 01 10 00 8f ff ff 7f", "too_many_claims"),
        ("08 01 01 00 01 01 10 00 02 00 04", "truncated"),  # two claims announced, half of one there
    ],
)
def test_bad_datagrams_raise_wire_error_with_a_reason(wire: str, reason: str) -> None:
    with pytest.raises(WireError) as exc:
        decode(bytes.fromhex(wire))
    assert exc.value.reason == reason


def test_claim_count_limit_is_what_a_datagram_could_hold() -> None:
    many = ReportSeg(1, 1, 10 * MAX_CLAIMS, 0, tuple(Claim(2 * i, 1) for i in range(MAX_CLAIMS)))
    assert decode(encode(Segment(SegType.REPORT, 1, 1, many))).content == many


@pytest.mark.parametrize(
    ("rs", "why"),
    [
        (ReportSeg(1, 1, 100, 0, (Claim(0, 10), Claim(20, 80))), None),
        (ReportSeg(1, 1, 100, 50, (Claim(0, 50),)), None),
        (ReportSeg(1, 1, 100, 50, (Claim(0, 51),)), "claim_out_of_range"),
        (ReportSeg(1, 1, 10, 20, ()), "report_bounds_reversed"),
        (ReportSeg(1, 1, 100, 0, (Claim(20, 10), Claim(0, 10))), "claims_out_of_order"),
        (ReportSeg(1, 1, 100, 0, (Claim(0, 10), Claim(5, 10))), "claims_out_of_order"),
        (ReportSeg(1, 1, 100, 0, (Claim(0, 0),)), "claims_out_of_order"),
    ],
)
def test_report_claims_are_checked(rs: ReportSeg, why: str | None) -> None:
    assert check_report(rs) == why
