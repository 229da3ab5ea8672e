"""SLIP framing (RFC 1055) for the serial convergence layer, sans-I/O.

A frame goes on the wire as ``END + escaped(frame) + END``: the leading END
flushes line noise that arrived before it into an (empty or rejected) frame,
as RFC 1055 suggests. Inside, ``END`` (0xC0) is sent as ``ESC ESC_END`` and
``ESC`` (0xDB) as ``ESC ESC_ESC``. Random bytes grow by about 2/256 (0.8 %).

RFC 1055 leaves an ESC followed by any other byte in the frame; here such a
frame is rejected (``bad-escape``), since the CRC above would reject it anyway
and saying why helps a person reading the counters. Frames longer than the
bound are dropped whole (``oversize``) without buffering them, so a line that
never sends END cannot grow memory.
"""

from __future__ import annotations

from dataclasses import dataclass

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_END_B = bytes([END])
_ESC_B = bytes([ESC])


def slip_encode(frame: bytes) -> bytes:
    """Return ``frame`` (bytes) escaped and delimited, ready for the wire."""
    # ESC first: escaping END introduces ESC bytes that must not be escaped again.
    body = frame.replace(_ESC_B, b"\xdb\xdd").replace(_END_B, b"\xdb\xdc")
    return _END_B + body + _END_B


def slip_overhead(frame: bytes) -> int:
    """Bytes SLIP adds to ``frame``: two ENDs plus one per escaped byte."""
    return 2 + frame.count(_ESC_B) + frame.count(_END_B)


def slip_unescape(body: bytes) -> bytes | None:
    """Undo escaping of one frame's body; ``None`` when an ESC is not followed by ESC_END/ESC_ESC."""
    if ESC not in body:
        return body
    parts = body.split(_ESC_B)
    out = [parts[0]]
    for part in parts[1:]:
        if not part:
            return None  # ESC at the end, or ESC ESC
        code = part[0]
        if code == ESC_END:
            out.append(_END_B)
        elif code == ESC_ESC:
            out.append(_ESC_B)
        else:
            return None
        out.append(part[1:])
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class SlipReject:
    """A delimited run of bytes that is not a frame: ``reason`` is ``bad-escape`` or ``oversize``."""

    reason: str
    size: int  # bytes seen on the wire for it


class SlipDecoder:
    """Splits a byte stream into unescaped frames.

    ``feed()`` returns, in wire order, ``bytes`` for each complete frame and a
    :class:`SlipReject` for each run that could not be one. Empty frames (two
    ENDs in a row) are skipped silently: every frame starts with one.
    """

    def __init__(self, max_frame: int):
        if max_frame < 1:
            raise ValueError(f"max_frame must be at least 1 byte, got {max_frame}")
        self.max_frame = max_frame
        # An escaped frame is at most twice as long as the frame it carries.
        self._max_wire = 2 * max_frame
        self._buf = bytearray()
        self._overflowed = 0  # wire bytes dropped for the frame now arriving

    def feed(self, data: bytes) -> list[bytes | SlipReject]:
        """Take bytes from the line; returns the frames (and rejects) they completed."""
        out: list[bytes | SlipReject] = []
        pieces = bytes(data).split(_END_B)
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            self._take(piece)
            if i < last:
                self._end(out)
        return out

    def _take(self, piece: bytes) -> None:
        if self._overflowed:
            self._overflowed += len(piece)
            return
        if len(self._buf) + len(piece) > self._max_wire:
            self._overflowed = len(self._buf) + len(piece)
            self._buf.clear()
            return
        self._buf += piece

    def _end(self, out: list[bytes | SlipReject]) -> None:
        if self._overflowed:
            out.append(SlipReject("oversize", self._overflowed))
            self._overflowed = 0
            return
        if not self._buf:
            return
        body = bytes(self._buf)
        self._buf.clear()
        frame = slip_unescape(body)
        if frame is None:
            out.append(SlipReject("bad-escape", len(body)))
        elif len(frame) > self.max_frame:
            out.append(SlipReject("oversize", len(body)))
        else:
            out.append(frame)
