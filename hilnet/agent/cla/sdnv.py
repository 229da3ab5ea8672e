"""SDNVs (RFC 6256), the variable-length integers of TCPCLv3 (RFC 7242) and LTP (RFC 5326).

Seven bits an octet, most significant first, the high bit set on every octet
but the last. Nothing here accepts more than :data:`MAX_SDNV_LEN` octets or a
value past 2^64-1: a peer that sends one is hostile or broken, and is told so
with :class:`~hilnet.errors.WireError` ``sdnv_too_long``.
"""

from __future__ import annotations

from hilnet.errors import WireError

MAX_SDNV_LEN = 10  # octets: 10 x 7 bits hold any 64-bit value
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


def encode_sdnv(value: int) -> bytes:
    """``value`` (0 to 2^64-1) as an SDNV."""
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"an SDNV cannot hold {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def parse_sdnv(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """The SDNV at ``buf[pos:]``: ``(value, position after it)``, or None if ``buf`` ends inside it.

    Raises WireError ``sdnv_too_long`` past :data:`MAX_SDNV_LEN` octets or 2^64-1.
    """
    value = 0
    for i in range(pos, min(len(buf), pos + MAX_SDNV_LEN)):
        octet = buf[i]
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            if value > U64_MAX:
                raise WireError("sdnv_too_long", f"an SDNV worth {value}, above 2^64-1")
            return value, i + 1
    if len(buf) - pos >= MAX_SDNV_LEN:
        raise WireError("sdnv_too_long", f"an SDNV of more than {MAX_SDNV_LEN} octets")
    return None
