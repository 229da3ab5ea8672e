"""TCPCLv3 wire format (RFC 7242): the values of :mod:`~hilnet.agent.cla.tcpclv3_messages` as octets.

No I/O and no session state: :mod:`hilnet.agent.cla.tcpclv3_session` drives
these. Lengths and the contact header's EID length are SDNVs (RFC 6256: seven
bits an octet, most significant first, the high bit set on all but the last);
the keepalive interval is a big-endian u16 (:mod:`~hilnet.agent.cla.sdnv` reads and writes SDNVs). Parsing is incremental: given a
buffer that does not yet hold a whole item a ``parse_*`` function returns
``None`` and consumes nothing. Input that can never become valid raises
:class:`~hilnet.errors.WireError` whose ``reason`` is a short counter key.

A DATA_SEGMENT is parsed up to its length only; the session streams the
octets after it, so a large segment is never buffered twice.
"""

from __future__ import annotations

import struct

from hilnet.agent.cla.sdnv import encode_sdnv, parse_sdnv
from hilnet.agent.cla.tcpclv3_messages import (
    MAGIC,
    U16_MAX,
    VERSION,
    AckSegment,
    ContactHeader,
    DataSegment,
    Keepalive,
    Length,
    Message,
    MsgType,
    RefuseBundle,
    Shutdown,
    ShutdownFlag,
)
from hilnet.errors import WireError

Buffer = bytes | bytearray | memoryview

KEEPALIVE_BYTES = bytes((MsgType.KEEPALIVE << 4,))


# --- encoding --------------------------------------------------------------


def encode_contact_header(flags: int, keepalive_s: int, eid: str) -> bytes:
    node = eid.encode("utf-8")
    if not 0 <= keepalive_s <= U16_MAX:
        raise ValueError(f"keepalive interval out of range: {keepalive_s}")
    return MAGIC + bytes((VERSION, flags)) + struct.pack("!H", keepalive_s) + encode_sdnv(len(node)) + node


def encode_segment_header(flags: int, length: int) -> bytes:
    """Header of a DATA_SEGMENT; the caller sends ``length`` octets after it."""
    return bytes(((MsgType.DATA_SEGMENT << 4) | flags,)) + encode_sdnv(length)


def encode_ack(length: int) -> bytes:
    return bytes((MsgType.ACK_SEGMENT << 4,)) + encode_sdnv(length)


def encode_refuse(reason: int) -> bytes:
    return bytes(((MsgType.REFUSE_BUNDLE << 4) | (reason & 0x0F),))


def encode_length(length: int) -> bytes:
    return bytes((MsgType.LENGTH << 4,)) + encode_sdnv(length)


def encode_shutdown(reason: int | None = None, delay_s: int | None = None) -> bytes:
    """SHUTDOWN with an optional reason code and an optional reconnection delay (s)."""
    flags = (ShutdownFlag.REASON if reason is not None else 0) | (ShutdownFlag.DELAY if delay_s is not None else 0)
    out = bytes(((MsgType.SHUTDOWN << 4) | flags,))
    if reason is not None:
        out += bytes((reason,))
    if delay_s is not None:
        out += encode_sdnv(delay_s)
    return out


# --- parsing ---------------------------------------------------------------


def parse_contact_header(buf: Buffer, max_eid_len: int) -> tuple[ContactHeader, int] | None:
    """The contact header at the start of ``buf``: ``(header, octets used)``, or None until complete.

    Checks the magic and the version as soon as their octets arrive, so a
    stray client or a TCPCLv4 peer (whose six-octet header ends there) is
    answered at once: WireError ``bad_magic`` or ``version_mismatch``.
    """
    head = bytes(buf[:4])
    if head != MAGIC[: len(head)]:
        raise WireError("bad_magic", f"contact header starts {head!r}, expected {MAGIC!r}")
    if len(buf) < 5:
        return None
    if buf[4] != VERSION:
        raise WireError("version_mismatch", f"TCPCL version {buf[4]}, this side speaks {VERSION}")
    if len(buf) < 8:
        return None
    sdnv = parse_sdnv(buf, 8)
    if sdnv is None:
        return None
    eid_len, pos = sdnv
    if eid_len > max_eid_len:
        raise WireError("eid_too_long", f"an EID of {eid_len} octets, limit {max_eid_len}")
    if len(buf) < pos + eid_len:
        return None
    try:
        eid = bytes(buf[pos : pos + eid_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("eid_not_utf8", f"the EID is not UTF-8 ({exc.reason})") from None
    (keepalive,) = struct.unpack_from("!H", buf, 6)
    return ContactHeader(buf[4], buf[5], keepalive, eid), pos + eid_len


def parse_message(buf: Buffer) -> tuple[Message, int] | None:
    """One message from the start of ``buf``: ``(message, octets used)`` or None.

    Raises WireError ``unknown_message_type`` (``header``: the first octet)
    or ``sdnv_too_long``.
    """
    if not buf:
        return None
    first = buf[0]
    typ, low = first >> 4, first & 0x0F
    if typ == MsgType.KEEPALIVE:
        return Keepalive(), 1
    if typ == MsgType.REFUSE_BUNDLE:
        return RefuseBundle(low), 1
    if typ in (MsgType.DATA_SEGMENT, MsgType.ACK_SEGMENT, MsgType.LENGTH):
        sdnv = parse_sdnv(buf, 1)
        if sdnv is None:
            return None
        value, used = sdnv
        if typ == MsgType.DATA_SEGMENT:
            return DataSegment(low, value), used
        return (AckSegment(value) if typ == MsgType.ACK_SEGMENT else Length(value)), used
    if typ == MsgType.SHUTDOWN:
        return _parse_shutdown(buf, low)
    raise WireError("unknown_message_type", f"message type 0x{typ:x} (octet 0x{first:02x})", header=first)


def _parse_shutdown(buf: Buffer, flags: int) -> tuple[Message, int] | None:
    pos = 1
    reason = delay = None
    if flags & ShutdownFlag.REASON:
        if len(buf) < 2:
            return None
        reason, pos = buf[1], 2
    if flags & ShutdownFlag.DELAY:
        sdnv = parse_sdnv(buf, pos)
        if sdnv is None:
            return None
        delay, pos = sdnv
    return Shutdown(reason, delay), pos
