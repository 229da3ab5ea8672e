"""TCPCLv4 wire format (RFC 9174): code tables, message values, encode and parse.

No I/O and no session state: :mod:`hilnet.agent.cla.tcpcl_session` drives these.
Every multi-octet integer is big-endian (network order). Parsing is
incremental: a ``parse_*`` function given a buffer that does not yet hold a
whole item returns ``None`` and consumes nothing, so a caller can feed bytes
as they arrive from TCP. Input that can never become valid raises
:class:`~hilnet.errors.WireError` whose ``reason`` is a short counter key.

XFER_SEGMENT is parsed up to and including its Data length field only
(:class:`SegmentHeader`); the data contents are streamed by the session so a
1 MiB segment is never buffered twice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from hilnet.errors import WireError

MAGIC = b"dtn!"
VERSION = 4
DEFAULT_PORT = 4556  # IANA-registered TCPCL port (RFC 9174 section 8.1)
CONTACT_HEADER_LEN = 6

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


class ContactFlag(IntFlag):
    """Contact Header flags (RFC 9174 Table 1)."""

    NONE = 0x00
    CAN_TLS = 0x01


class MsgType(IntEnum):
    """Message Type codes (RFC 9174 Table 14)."""

    XFER_SEGMENT = 0x01
    XFER_ACK = 0x02
    XFER_REFUSE = 0x03
    KEEPALIVE = 0x04
    SESS_TERM = 0x05
    MSG_REJECT = 0x06
    SESS_INIT = 0x07


class SegmentFlag(IntFlag):
    """XFER_SEGMENT and XFER_ACK flags (RFC 9174 Table 5)."""

    NONE = 0x00
    END = 0x01
    START = 0x02


class SessTermFlag(IntFlag):
    """SESS_TERM flags (RFC 9174 Table 8)."""

    NONE = 0x00
    REPLY = 0x01


class ExtFlag(IntFlag):
    """Session and transfer extension item flags (RFC 9174 Tables 3 and 7)."""

    NONE = 0x00
    CRITICAL = 0x01


class TransferExtType(IntEnum):
    """Transfer Extension Types (RFC 9174 Table 13)."""

    TRANSFER_LENGTH = 0x0001


class RefuseReason(IntEnum):
    """XFER_REFUSE reason codes (RFC 9174 Table 6)."""

    UNKNOWN = 0x00
    COMPLETED = 0x01
    NO_RESOURCES = 0x02
    RETRANSMIT = 0x03
    NOT_ACCEPTABLE = 0x04
    EXTENSION_FAILURE = 0x05
    SESSION_TERMINATING = 0x06


class TermReason(IntEnum):
    """SESS_TERM reason codes (RFC 9174 Table 9)."""

    UNKNOWN = 0x00
    IDLE_TIMEOUT = 0x01
    VERSION_MISMATCH = 0x02
    BUSY = 0x03
    CONTACT_FAILURE = 0x04
    RESOURCE_EXHAUSTION = 0x05


class RejectReason(IntEnum):
    """MSG_REJECT reason codes (RFC 9174 Table 17)."""

    MESSAGE_TYPE_UNKNOWN = 0x01
    MESSAGE_UNSUPPORTED = 0x02
    MESSAGE_UNEXPECTED = 0x03


def reason_name(table: type[IntEnum], code: int) -> str:
    """Name of ``code`` in ``table``; unknown codes read as ``unknown(0xNN)``.

    RFC 9174 asks that an undecodable reason be treated as "Unknown"; keeping
    the number in the text still tells a person what the peer sent.
    """
    try:
        return table(code).name.lower()
    except ValueError:
        return f"unknown(0x{code:02x})"


def _fail(reason: str, detail: str) -> WireError:
    return WireError(reason, detail)


# --- values ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactHeader:
    version: int
    flags: int


@dataclass(frozen=True, slots=True)
class ExtensionItem:
    """One session or transfer extension item (TLV)."""

    flags: int
    type: int
    value: bytes

    @property
    def critical(self) -> bool:
        return bool(self.flags & ExtFlag.CRITICAL)


@dataclass(frozen=True, slots=True)
class SessInit:
    keepalive_s: int
    segment_mru: int  # bytes
    transfer_mru: int  # bytes
    node_id: str  # "" when the peer sent none
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SessTerm:
    flags: int
    reason: int

    @property
    def reply(self) -> bool:
        return bool(self.flags & SessTermFlag.REPLY)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """An XFER_SEGMENT up to its Data length; ``length`` data octets follow."""

    flags: int
    transfer_id: int
    extensions: tuple[ExtensionItem, ...]
    length: int

    @property
    def start(self) -> bool:
        return bool(self.flags & SegmentFlag.START)

    @property
    def end(self) -> bool:
        return bool(self.flags & SegmentFlag.END)


@dataclass(frozen=True, slots=True)
class XferAck:
    flags: int
    transfer_id: int
    length: int  # total octets acknowledged so far


@dataclass(frozen=True, slots=True)
class XferRefuse:
    reason: int
    transfer_id: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    pass


@dataclass(frozen=True, slots=True)
class MsgReject:
    reason: int
    rejected_header: int


Message = SessInit | SessTerm | SegmentHeader | XferAck | XferRefuse | Keepalive | MsgReject


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
        raise _fail("bad_magic", f"contact header starts {head!r}, expected {MAGIC!r}")
    if len(buf) < CONTACT_HEADER_LEN:
        return None
    return ContactHeader(version=buf[4], flags=buf[5])


def parse_extensions(data: bytes, what: str) -> tuple[ExtensionItem, ...]:
    """Split an extension items list; items must fill ``data`` exactly."""
    items = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise _fail(f"{what}_ext_truncated", f"{len(data) - pos} octets left, an item header needs 5")
        flags, typ, length = struct.unpack_from("!BHH", data, pos)
        pos += 5
        if pos + length > len(data):
            raise _fail(f"{what}_ext_overrun", f"item type {typ} claims {length} octets, {len(data) - pos} left")
        items.append(ExtensionItem(flags, typ, bytes(data[pos : pos + length])))
        pos += length
    return tuple(items)


def parse_message(
    buf: bytearray | bytes, max_ext_len: int = 65536, max_node_id_len: int = U16_MAX
) -> tuple[Message, int] | None:
    """One message from the start of ``buf``: ``(message, octets used)`` or ``None``.

    ``buf`` must start at a Message Header. ``max_ext_len`` bounds the octets
    of session/transfer extension items we are willing to buffer (bytes).
    Raises WireError for an unknown type (reason ``unknown_message_type``;
    its ``header`` attribute holds the type octet) or a malformed body.
    """
    if not buf:
        return None
    typ = buf[0]
    n = len(buf)
    if typ == MsgType.XFER_SEGMENT:
        if n < 2:
            return None
        flags = buf[1]
        if flags & SegmentFlag.START:
            if n < 1 + _SEG_START.size:
                return None
            _, tid, ext_len = _SEG_START.unpack_from(buf, 1)
            if ext_len > max_ext_len:
                raise _fail("transfer_ext_too_long", f"{ext_len} octets of transfer extensions, limit {max_ext_len}")
            end = 1 + _SEG_START.size + ext_len
            if n < end + 8:
                return None
            exts = parse_extensions(bytes(buf[1 + _SEG_START.size : end]), "transfer")
            (length,) = _U64.unpack_from(buf, end)
            return SegmentHeader(flags, tid, exts, length), end + 8
        if n < 1 + _SEG_MID.size:
            return None
        _, tid, length = _SEG_MID.unpack_from(buf, 1)
        return SegmentHeader(flags, tid, (), length), 1 + _SEG_MID.size
    if typ == MsgType.XFER_ACK:
        if n < 1 + _ACK.size:
            return None
        flags, tid, length = _ACK.unpack_from(buf, 1)
        return XferAck(flags, tid, length), 1 + _ACK.size
    if typ == MsgType.XFER_REFUSE:
        if n < 1 + _REFUSE.size:
            return None
        reason, tid = _REFUSE.unpack_from(buf, 1)
        return XferRefuse(reason, tid), 1 + _REFUSE.size
    if typ == MsgType.KEEPALIVE:
        return Keepalive(), 1
    if typ == MsgType.SESS_TERM:
        if n < 3:
            return None
        return SessTerm(buf[1], buf[2]), 3
    if typ == MsgType.MSG_REJECT:
        if n < 3:
            return None
        return MsgReject(buf[1], buf[2]), 3
    if typ == MsgType.SESS_INIT:
        return _parse_sess_init(buf, max_ext_len, max_node_id_len)
    raise WireError("unknown_message_type", f"message type 0x{typ:02x}", header=typ)


def _parse_sess_init(buf: bytearray | bytes, max_ext_len: int, max_node_id_len: int) -> tuple[SessInit, int] | None:
    n = len(buf)
    pos = 1 + _SESS_INIT_FIXED.size
    if n < pos:
        return None
    keepalive, seg_mru, xfer_mru, node_len = _SESS_INIT_FIXED.unpack_from(buf, 1)
    if node_len > max_node_id_len:
        raise _fail("node_id_too_long", f"node id of {node_len} octets, limit {max_node_id_len}")
    if n < pos + node_len + 4:
        return None
    try:
        node_id = bytes(buf[pos : pos + node_len]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail("node_id_not_utf8", f"node id is not UTF-8 ({exc.reason})") from None
    pos += node_len
    (ext_len,) = _U32.unpack_from(buf, pos)
    pos += 4
    if ext_len > max_ext_len:
        raise _fail("session_ext_too_long", f"{ext_len} octets of session extensions, limit {max_ext_len}")
    if n < pos + ext_len:
        return None
    exts = parse_extensions(bytes(buf[pos : pos + ext_len]), "session")
    return SessInit(keepalive, seg_mru, xfer_mru, node_id, exts), pos + ext_len


def valid_node_id(node_id: str) -> bool:
    """Whether ``node_id`` looks like a URI (``scheme:rest``, RFC 3986 scheme syntax).

    RFC 9174 asks for a URI of a Bundle Protocol scheme; we check the URI
    shape only, so a peer with a scheme we do not route still gets a session.
    """
    scheme, sep, rest = node_id.partition(":")
    if not sep or not rest or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        return False
    return all(c.isascii() and (c.isalnum() or c in "+-.") for c in scheme) and all(
        c.isprintable() and not c.isspace() for c in rest
    )
