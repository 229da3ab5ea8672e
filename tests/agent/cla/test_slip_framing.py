"""SLIP (RFC 1055) framing: round trips, escapes, garbage, bounds."""

import random

from hypothesis import given
from hypothesis import strategies as st

from hilnet.agent.cla.slip import END, ESC, SlipDecoder, SlipReject, slip_encode, slip_overhead


def test_escapes_follow_rfc1055():
    assert slip_encode(bytes([1, END, 2, ESC, 3])) == bytes([END, 1, ESC, 0xDC, 2, ESC, 0xDD, 3, END])
    assert slip_overhead(bytes([END, ESC, 0])) == 4


def test_end_and_esc_never_appear_inside_an_encoded_frame():
    frame = bytes(range(256)) * 4
    body = slip_encode(frame)[1:-1]
    assert END not in body
    assert SlipDecoder(2048).feed(slip_encode(frame)) == [frame]


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 50))
def test_frames_survive_any_split_of_the_stream(frames, cut):
    wire = b"".join(slip_encode(f) for f in frames)
    dec = SlipDecoder(300)
    got = []
    for i in range(0, len(wire), cut):
        got += dec.feed(wire[i : i + cut])
    assert got == frames


def test_bad_escape_is_rejected_and_the_next_frame_still_decodes():
    dec = SlipDecoder(100)
    out = dec.feed(bytes([END, 1, ESC, 0x41, 2, END]) + slip_encode(b"ok"))
    assert out == [SlipReject("bad-escape", 4), b"ok"]
    assert dec.feed(bytes([END, 7, ESC, END])) == [SlipReject("bad-escape", 2)]


def test_oversize_frames_are_dropped_without_buffering_them():
    dec = SlipDecoder(10)
    out = dec.feed(bytes([END]) + b"x" * 100_000)
    assert out == [] and len(dec._buf) <= 20
    out = dec.feed(bytes([END]) + slip_encode(b"small"))
    assert out[0] == SlipReject("oversize", 100_000) and out[1] == b"small"
    # 11 bytes unescaped is over the bound even though the wire form fits.
    assert dec.feed(slip_encode(b"y" * 11)) == [SlipReject("oversize", 11)]


def test_random_bytes_never_raise():
    rng = random.Random(5)
    dec = SlipDecoder(64)
    for _ in range(200):
        for item in dec.feed(rng.randbytes(rng.randrange(0, 300))):
            assert isinstance(item, (bytes, SlipReject))
            if isinstance(item, bytes):
                assert 0 < len(item) <= 64
