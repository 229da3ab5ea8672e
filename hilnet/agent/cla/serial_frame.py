"""Frames of the serial convergence layer: layout, CRC-32C, no I/O.

Every frame (before SLIP escaping) is ``kind byte + body + CRC-32C``, integers
big-endian, the CRC (Castagnoli, the ``crc32c`` package) over all bytes before
it. The kind byte is ``VERSION << 4 | kind``.

=======  ===================================================================
kind     body
=======  ===================================================================
DATA 1   nonce u32, transfer u32, index u32, total u32, seg_size u16, payload
ACK 2    nonce u32, transfer u32, flags u8, cum u32, bitmap (0..32 bytes)
REFUSE 3 nonce u32, transfer u32, reason u8
HELLO 4  nonce u32, seen u32, keepalive_ms u32, node id EID (UTF-8, 1..255 bytes)
=======  ===================================================================

``nonce`` in DATA is the sender's session nonce; ACK and REFUSE echo the nonce
of the DATA they answer, so a restarted sender never takes an ack meant for
its previous life. A transfer is named by (sender nonce, transfer id).

DATA carries the bundle's total length and the transfer's segment size in
every frame, so any one segment lets the receiver set up reassembly (the
first may be lost). Segment ``index`` holds bytes ``[index * seg_size,
min(total, (index + 1) * seg_size))``.

ACK: ``cum`` segments from 0 are received; bit ``i`` of ``bitmap`` (byte
``i // 8``, most significant bit first) says segment ``cum + 1 + i`` is
received too. Flag FINAL means the whole bundle is committed by the peer's
agent. The last segment of a bundle only ever shows as received with FINAL.

HELLO is also the keepalive. ``seen`` is the nonce last heard from the peer
(0: none), so each side knows the other hears it. Nonces are never 0.
``keepalive_ms`` is the most the sender stays silent, so the receiver's
dead-peer timer follows the peer's promise, not its own guess.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from crc32c import crc32c

from hilnet.errors import FrameError

VERSION = 1
MAX_SEGMENT = 8192  # bytes of payload in one DATA frame, a protocol bound
MAX_BITMAP = 32  # bytes: an ACK describes at most 1 + 256 segments past cum
MAX_EID = 255  # bytes of UTF-8
FLAG_FINAL = 0x01


class Kind(IntEnum):
    DATA = 1
    ACK = 2
    REFUSE = 3
    HELLO = 4


class RefuseReason(IntEnum):
    STORE_FULL = 1  # the agent's store refused it; try again later
    TOO_LARGE = 2  # over the receiver's max bundle size; retrying will not help
    INVALID = 3  # the transfer's parameters do not hold together


_DATA_HDR = struct.Struct(">BIIIIH")
_ACK_HDR = struct.Struct(">BIIBI")
_REFUSE = struct.Struct(">BIIB")
_HELLO_HDR = struct.Struct(">BIII")
_CRC = struct.Struct(">I")

DATA_OVERHEAD = _DATA_HDR.size + _CRC.size  # bytes around a payload, before SLIP
MAX_FRAME = _DATA_HDR.size + MAX_SEGMENT + _CRC.size


@dataclass(frozen=True, slots=True)
class Data:
    nonce: int
    transfer: int
    index: int
    total: int  # bytes in the whole bundle
    seg_size: int  # bytes per segment (the last may be shorter)
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    nonce: int
    transfer: int
    final: bool
    cum: int  # segments 0..cum-1 received
    bitmap: bytes  # bit i: segment cum + 1 + i received

    def received(self) -> list[int]:
        """Indices above ``cum`` that the bitmap marks received."""
        out = []
        for byte_i, byte in enumerate(self.bitmap):
            if byte:
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        out.append(self.cum + 1 + byte_i * 8 + bit)
        return out


@dataclass(frozen=True, slots=True)
class Refuse:
    nonce: int
    transfer: int
    reason: RefuseReason


@dataclass(frozen=True, slots=True)
class Hello:
    nonce: int
    seen: int  # the peer's nonce last heard, 0 if none
    keepalive_ms: int  # the sender sends some frame at least this often while the peer is up
    eid: str


Frame = Data | Ack | Refuse | Hello


def segment_count(total: int, seg_size: int) -> int:
    """Segments a bundle of ``total`` bytes needs; an empty bundle still has one (empty) segment."""
    return max(1, -(-total // seg_size))


def segment_length(total: int, seg_size: int, index: int) -> int:
    """Payload bytes of segment ``index``."""
    return max(0, min(seg_size, total - index * seg_size))


def make_bitmap(cum: int, received: set[int] | list[int]) -> bytes:
    """ACK bitmap for indices above ``cum`` (those past the 256-segment span are left out)."""
    bits = bytearray(MAX_BITMAP)
    top = -1
    for index in received:
        i = index - cum - 1
        if 0 <= i < MAX_BITMAP * 8:
            bits[i // 8] |= 0x80 >> (i % 8)
            top = max(top, i)
    return bytes(bits[: top // 8 + 1]) if top >= 0 else b""


def encode(frame: Frame) -> bytes:
    """Frame -> bytes with CRC, before SLIP."""
    if isinstance(frame, Data):
        body = (
            _DATA_HDR.pack(
                VERSION << 4 | Kind.DATA, frame.nonce, frame.transfer, frame.index, frame.total, frame.seg_size
            )
            + frame.payload
        )
    elif isinstance(frame, Ack):
        body = (
            _ACK_HDR.pack(
                VERSION << 4 | Kind.ACK, frame.nonce, frame.transfer, FLAG_FINAL if frame.final else 0, frame.cum
            )
            + frame.bitmap
        )
    elif isinstance(frame, Refuse):
        body = _REFUSE.pack(VERSION << 4 | Kind.REFUSE, frame.nonce, frame.transfer, frame.reason)
    elif isinstance(frame, Hello):
        body = (
            _HELLO_HDR.pack(VERSION << 4 | Kind.HELLO, frame.nonce, frame.seen, frame.keepalive_ms) + frame.eid.encode()
        )
    else:
        raise TypeError(f"not a serial CLA frame: {frame!r}")
    return body + _CRC.pack(crc32c(body))


def decode(raw: bytes) -> Frame:
    """Bytes (SLIP already removed) -> frame; raises FrameError with a counter ``reason``."""
    if len(raw) < 1 + _CRC.size:
        raise FrameError("short", f"{len(raw)} bytes")
    body = raw[: -_CRC.size]
    if _CRC.unpack_from(raw, len(body))[0] != crc32c(body):
        raise FrameError("crc", f"{len(raw)}-byte frame")
    version, kind = body[0] >> 4, body[0] & 0x0F
    if version != VERSION:
        raise FrameError("version", f"version {version}, expected {VERSION}")
    if kind == Kind.DATA:
        return _decode_data(body)
    if kind == Kind.ACK:
        return _decode_ack(body)
    if kind == Kind.REFUSE:
        return _decode_refuse(body)
    if kind == Kind.HELLO:
        return _decode_hello(body)
    raise FrameError("kind", f"unknown frame kind {kind}")


def _decode_data(body: bytes) -> Data:
    if len(body) < _DATA_HDR.size:
        raise FrameError("length", "DATA header truncated")
    _, nonce, transfer, index, total, seg_size = _DATA_HDR.unpack_from(body)
    payload = body[_DATA_HDR.size :]
    if nonce == 0:
        raise FrameError("nonce", "DATA with nonce 0")
    if not 1 <= seg_size <= MAX_SEGMENT:
        raise FrameError("segment", f"segment size {seg_size} outside 1..{MAX_SEGMENT}")
    if index >= segment_count(total, seg_size):
        raise FrameError("segment", f"index {index} past the end of a {total}-byte bundle")
    if len(payload) != segment_length(total, seg_size, index):
        raise FrameError("segment", f"segment {index} carries {len(payload)} bytes")
    return Data(nonce, transfer, index, total, seg_size, payload)


def _decode_ack(body: bytes) -> Ack:
    if len(body) < _ACK_HDR.size:
        raise FrameError("length", "ACK truncated")
    _, nonce, transfer, flags, cum = _ACK_HDR.unpack_from(body)
    bitmap = body[_ACK_HDR.size :]
    if len(bitmap) > MAX_BITMAP:
        raise FrameError("length", f"ACK bitmap of {len(bitmap)} bytes")
    if flags & ~FLAG_FINAL:
        raise FrameError("flags", f"ACK flags {flags:#x}")
    return Ack(nonce, transfer, bool(flags & FLAG_FINAL), cum, bytes(bitmap))


def _decode_refuse(body: bytes) -> Refuse:
    if len(body) != _REFUSE.size:
        raise FrameError("length", "REFUSE of the wrong size")
    _, nonce, transfer, reason = _REFUSE.unpack(body)
    try:
        return Refuse(nonce, transfer, RefuseReason(reason))
    except ValueError:
        raise FrameError("reason", f"REFUSE reason {reason}") from None


def _decode_hello(body: bytes) -> Hello:
    if len(body) < _HELLO_HDR.size + 1 or len(body) > _HELLO_HDR.size + MAX_EID:
        raise FrameError("length", "HELLO node id missing or too long")
    _, nonce, seen, keepalive_ms = _HELLO_HDR.unpack_from(body)
    if nonce == 0:
        raise FrameError("nonce", "HELLO with nonce 0")
    if keepalive_ms == 0:
        raise FrameError("keepalive", "HELLO with a keepalive of 0 ms")
    try:
        eid = body[_HELLO_HDR.size :].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("eid", "node id is not UTF-8") from None
    if not eid.isprintable():
        raise FrameError("eid", "node id has control characters")
    return Hello(nonce, seen, keepalive_ms, eid)
