"""Serial CLA frames: layout, CRC-32C, validation of every field from the wire."""

import random
import struct

import pytest
from crc32c import crc32c

from hilnet.agent.cla.serial_frame import (
    MAX_SEGMENT,
    Ack,
    Data,
    Hello,
    Refuse,
    RefuseReason,
    decode,
    encode,
    make_bitmap,
    segment_count,
    segment_length,
)
from hilnet.errors import FrameError


def test_round_trip_of_every_kind():
    for frame in [
        Data(7, 1, 2, 5000, 1024, b"z" * 1024),
        Data(7, 1, 4, 5000, 1024, b"z" * (5000 - 4096)),
        Data(7, 1, 0, 0, 1024, b""),
        Ack(7, 1, False, 3, make_bitmap(3, [5, 12])),
        Ack(7, 1, True, 5, b""),
        Refuse(7, 9, RefuseReason.STORE_FULL),
        Hello(0xFFFFFFFF, 0, 520, "ipn:1.0"),
    ]:
        assert decode(encode(frame)) == frame


def test_layout_is_big_endian_with_crc32c_last():
    raw = encode(Hello(1, 2, 3, "ipn:9.0"))
    assert raw[:13] == bytes([0x14]) + struct.pack(">III", 1, 2, 3)
    assert raw[13:-4] == b"ipn:9.0"
    assert struct.unpack(">I", raw[-4:])[0] == crc32c(raw[:-4])


def test_bitmap_marks_segments_after_cum():
    ack = Ack(1, 1, False, 10, make_bitmap(10, [11, 18, 19, 266, 267]))
    assert ack.received() == [11, 18, 19, 266]  # 267 is past the 256-segment span
    assert make_bitmap(10, []) == b""


def test_segment_arithmetic():
    assert segment_count(0, 1024) == 1 and segment_length(0, 1024, 0) == 0
    assert segment_count(2048, 1024) == 2 and segment_count(2049, 1024) == 3
    assert segment_length(2049, 1024, 2) == 1


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "short"),
        (b"\x14\x00\x00", "short"),
        (encode(Hello(1, 0, 5, "a"))[:-1] + b"\x00", "crc"),
    ],
)
def test_damage_is_named(raw, reason):
    with pytest.raises(FrameError) as e:
        decode(raw)
    assert e.value.reason == reason


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", crc32c(body))


@pytest.mark.parametrize(
    "body, reason",
    [
        (bytes([0x24]) + bytes(20), "version"),
        (bytes([0x19]) + bytes(20), "kind"),
        (bytes([0x11]) + bytes(5), "length"),
        (struct.pack(">BIIIIH", 0x11, 0, 1, 0, 10, 4) + b"abcd", "nonce"),
        (struct.pack(">BIIIIH", 0x11, 1, 1, 0, 10, 0), "segment"),
        (struct.pack(">BIIIIH", 0x11, 1, 1, 0, 10, MAX_SEGMENT + 1), "segment"),
        (struct.pack(">BIIIIH", 0x11, 1, 1, 3, 10, 4), "segment"),  # index past the end
        (struct.pack(">BIIIIH", 0x11, 1, 1, 2, 10, 4) + b"abc", "segment"),  # last is 2 bytes
        (struct.pack(">BIIBI", 0x12, 1, 1, 2, 0), "flags"),
        (struct.pack(">BIIBI", 0x12, 1, 1, 0, 0) + bytes(33), "length"),
        (struct.pack(">BIIB", 0x13, 1, 1, 99), "reason"),
        (struct.pack(">BIIB", 0x13, 1, 1, 1) + b"x", "length"),
        (struct.pack(">BIII", 0x14, 1, 0, 5), "length"),
        (struct.pack(">BIII", 0x14, 1, 0, 5) + b"\xff\xfe", "eid"),
        (struct.pack(">BIII", 0x14, 1, 0, 5) + b"a\nb", "eid"),
        (struct.pack(">BIII", 0x14, 1, 0, 0) + b"ipn:1.0", "keepalive"),
        (struct.pack(">BIII", 0x14, 0, 0, 5) + b"ipn:1.0", "nonce"),
    ],
)
def test_invalid_fields_are_named(body, reason):
    with pytest.raises(FrameError) as e:
        decode(_with_crc(body))
    assert e.value.reason == reason


def test_random_bytes_with_a_valid_crc_never_raise_anything_but_frame_error():
    rng = random.Random(11)
    for _ in range(3000):
        body = bytes([rng.choice([0x11, 0x12, 0x13, 0x14, rng.randrange(256)])]) + rng.randbytes(rng.randrange(0, 40))
        try:
            decode(_with_crc(body))
        except FrameError:
            pass
