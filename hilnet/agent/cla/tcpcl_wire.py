"""TCPCLv4 wire format (RFC 9174): the values of :mod:`~hilnet.agent.cla.tcpcl_messages` as octets.

No I/O and no session state: :mod:`hilnet.agent.cla.tcpcl_session` drives these.
Every multi-octet integer is big-endian (network order). Parsing is
incremental: a ``parse_*`` function given a buffer that does not yet hold a
whole item returns ``None`` and consumes nothing, so a caller can feed bytes
as they arrive from TCP. Input that can never become valid raises
:class:`~hilnet.errors.WireError` whose ``reason`` is a short counter key.

XFER_SEGMENT is parsed up to and including its Data length field only
(:class:`~hilnet.agent.cla.tcpcl_messages.SegmentHeader`); the data contents
are streamed by the session so a 1 MiB segment is never buffered twice.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from hilnet.agent.cla.tcpcl_messages import (
    CONTACT_HEADER_LEN,
    MAGIC,
    U16_MAX,
    VERSION,
    ContactFlag,
    ContactHeader,
    ExtensionItem,
    ExtFlag,
    Keepalive,
    Message,
    MsgReject,
    MsgType,
    SegmentFlag,
    SegmentHeader,
    SessInit,
    SessTerm,
    SessTermFlag,
    TransferExtType,
    XferAck,
    XferRefuse,
)
from hilnet.errors import WireError

Buffer = bytes | bytearray | memoryview


# --- encoding --------------------------------------------------------------


def encode_contact_header(flags: int = ContactFlag.NONE) -> bytes:
    return MAGIC + bytes((VERSION, flags))


def encode_extensions(items: tuple[ExtensionItem, ...] | list[ExtensionItem]) -> bytes:
    out = bytearray()
    for item in items:
        if len(item.value) > U16_MAX:
            raise ValueError("extension item value is longer than 65535 octets")
        out += struct.pack("!BHH", item.flags, item.type, len(item.value))
        out += item.value
    return bytes(out)


def encode_sess_init(msg: SessInit) -> bytes:
    node = msg.node_id.encode("utf-8")
    if len(node) > U16_MAX:
        raise ValueError("node id is longer than 65535 octets")
    ext = encode_extensions(msg.extensions)
    return (
        struct.pack("!BHQQH", MsgType.SESS_INIT, msg.keepalive_s, msg.segment_mru, msg.transfer_mru, len(node))
        + node
        + struct.pack("!I", len(ext))
        + ext
    )


def encode_sess_term(reason: int, reply: bool = False) -> bytes:
    return struct.pack("!BBB", MsgType.SESS_TERM, SessTermFlag.REPLY if reply else 0, reason)


def encode_segment_header(flags: int, transfer_id: int, length: int, extensions: bytes = b"") -> bytes:
    """Header of an XFER_SEGMENT; the caller sends ``length`` data octets after it.

    ``extensions`` is the encoded Transfer Extension Items list, only allowed
    (and always length-prefixed) on the START segment.
    """
    if flags & SegmentFlag.START:
        return (
            struct.pack("!BBQI", MsgType.XFER_SEGMENT, flags, transfer_id, len(extensions))
            + extensions
            + struct.pack("!Q", length)
        )
    if extensions:
        raise ValueError("transfer extension items only go on the START segment")
    return struct.pack("!BBQQ", MsgType.XFER_SEGMENT, flags, transfer_id, length)


def encode_transfer_length(total: int) -> bytes:
    """The Transfer Length extension item (critical is not required: it is a hint)."""
    return encode_extensions([ExtensionItem(ExtFlag.NONE, TransferExtType.TRANSFER_LENGTH, struct.pack("!Q", total))])


def encode_xfer_ack(flags: int, transfer_id: int, length: int) -> bytes:
    return struct.pack("!BBQQ", MsgType.XFER_ACK, flags, transfer_id, length)


def encode_xfer_refuse(reason: int, transfer_id: int) -> bytes:
    return struct.pack("!BBQ", MsgType.XFER_REFUSE, reason, transfer_id)


KEEPALIVE_BYTES = bytes((MsgType.KEEPALIVE,))


def encode_msg_reject(reason: int, rejected_header: int) -> bytes:
    return struct.pack("!BBB", MsgType.MSG_REJECT, reason, rejected_header)


# --- parsing ---------------------------------------------------------------

_SESS_INIT_FIXED = struct.Struct("!HQQH")  # after the type octet
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_ACK = struct.Struct("!BQQ")
_REFUSE = struct.Struct("!BQ")
_SEG_START = struct.Struct("!BQI")
_SEG_MID = struct.Struct("!BQQ")


def parse_contact_header(buf: bytes | bytearray | memoryview) -> ContactHeader | None:
    """The 6-octet Contact Header, or ``None`` until 6 octets are there.

    Checks the magic as soon as the first octets arrive, so a stray HTTP
    client is told off before it sends six bytes.
    """
    head = bytes(buf[:4])
    if head != MAGIC[: len(head)]:
        raise WireError("bad_magic", f"contact header starts {head!r}, expected {MAGIC!r}")
    if len(buf) < CONTACT_HEADER_LEN:
        return None
    return ContactHeader(version=buf[4], flags=buf[5])


def parse_extensions(data: bytes, what: str) -> tuple[ExtensionItem, ...]:
    """Split an extension items list; items must fill ``data`` exactly."""
    items = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise WireError(f"{what}_ext_truncated", f"{len(data) - pos} octets left, an item header needs 5")
        flags, typ, length = struct.unpack_from("!BHH", data, pos)
        pos += 5
        if pos + length > len(data):
            raise WireError(f"{what}_ext_overrun", f"item type {typ} claims {length} octets, {len(data) - pos} left")
        items.append(ExtensionItem(flags, typ, bytes(data[pos : pos + length])))
        pos += length
    return tuple(items)


def parse_message(buf: Buffer, max_ext_len: int = 65536, max_node_id_len: int = U16_MAX) -> tuple[Message, int] | None:
    """One message from the start of ``buf``: ``(message, octets used)`` or ``None``.

    ``buf`` must start at a Message Header. ``max_ext_len`` bounds the octets
    of session/transfer extension items we are willing to buffer (bytes).
    Raises WireError for an unknown type (reason ``unknown_message_type``;
    its ``header`` attribute holds the type octet) or a malformed body.
    """
    if not buf:
        return None
    typ = buf[0]
    if typ == MsgType.XFER_SEGMENT:  # the common case first: bulk data
        return _parse_segment(buf, max_ext_len)
    if typ == MsgType.SESS_INIT:
        return _parse_sess_init(buf, max_ext_len, max_node_id_len)
    parse = _FIXED_SIZE.get(typ)
    if parse is None:
        raise WireError("unknown_message_type", f"message type 0x{typ:02x}", header=typ)
    return parse(buf)


def _parse_segment(buf: Buffer, max_ext_len: int) -> tuple[SegmentHeader, int] | None:
    n = len(buf)
    if n < 2:
        return None
    flags = buf[1]
    if not flags & SegmentFlag.START:
        if n < 1 + _SEG_MID.size:
            return None
        _, tid, length = _SEG_MID.unpack_from(buf, 1)
        return SegmentHeader(flags, tid, (), length), 1 + _SEG_MID.size
    if n < 1 + _SEG_START.size:
        return None
    _, tid, ext_len = _SEG_START.unpack_from(buf, 1)
    if ext_len > max_ext_len:
        raise WireError("transfer_ext_too_long", f"{ext_len} octets of transfer extensions, limit {max_ext_len}")
    end = 1 + _SEG_START.size + ext_len
    if n < end + 8:
        return None
    exts = parse_extensions(bytes(buf[1 + _SEG_START.size : end]), "transfer")
    (length,) = _U64.unpack_from(buf, end)
    return SegmentHeader(flags, tid, exts, length), end + 8


def _parse_xfer_ack(buf: Buffer) -> tuple[Message, int] | None:
    if len(buf) < 1 + _ACK.size:
        return None
    flags, tid, length = _ACK.unpack_from(buf, 1)
    return XferAck(flags, tid, length), 1 + _ACK.size


def _parse_xfer_refuse(buf: Buffer) -> tuple[Message, int] | None:
    if len(buf) < 1 + _REFUSE.size:
        return None
    reason, tid = _REFUSE.unpack_from(buf, 1)
    return XferRefuse(reason, tid), 1 + _REFUSE.size


def _parse_keepalive(buf: Buffer) -> tuple[Message, int] | None:
    return Keepalive(), 1


def _parse_sess_term(buf: Buffer) -> tuple[Message, int] | None:
    return (SessTerm(buf[1], buf[2]), 3) if len(buf) >= 3 else None


def _parse_msg_reject(buf: Buffer) -> tuple[Message, int] | None:
    return (MsgReject(buf[1], buf[2]), 3) if len(buf) >= 3 else None


# Messages whose size their type alone fixes, by Message Type code.
_FIXED_SIZE: dict[int, Callable[[Buffer], tuple[Message, int] | None]] = {
    MsgType.XFER_ACK: _parse_xfer_ack,
    MsgType.XFER_REFUSE: _parse_xfer_refuse,
    MsgType.KEEPALIVE: _parse_keepalive,
    MsgType.SESS_TERM: _parse_sess_term,
    MsgType.MSG_REJECT: _parse_msg_reject,
}


def _parse_sess_init(buf: Buffer, max_ext_len: int, max_node_id_len: int) -> tuple[SessInit, int] | None:
    n = len(buf)
    pos = 1 + _SESS_INIT_FIXED.size
    if n < pos:
        return None
    keepalive, seg_mru, xfer_mru, node_len = _SESS_INIT_FIXED.unpack_from(buf, 1)
    if node_len > max_node_id_len:
        raise WireError("node_id_too_long", f"node id of {node_len} octets, limit {max_node_id_len}")
    if n < pos + node_len + 4:
        return None
    try:
        node_id = bytes(buf[pos : pos + node_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("node_id_not_utf8", f"node id is not UTF-8 ({exc.reason})") from None
    pos += node_len
    (ext_len,) = _U32.unpack_from(buf, pos)
    pos += 4
    if ext_len > max_ext_len:
        raise WireError("session_ext_too_long", f"{ext_len} octets of session extensions, limit {max_ext_len}")
    if n < pos + ext_len:
        return None
    exts = parse_extensions(bytes(buf[pos : pos + ext_len]), "session")
    return SessInit(keepalive, seg_mru, xfer_mru, node_id, exts), pos + ext_len
