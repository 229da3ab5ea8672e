"""TCPCLv4 vocabulary (RFC 9174): code tables and message values, no octets.

What a session and its peer say to each other, as typed values;
:mod:`hilnet.agent.cla.tcpcl_wire` turns them into octets and back. Each
message type knows its Message Type code (``TYPE``). Sizes are in bytes,
times in seconds where a field is named ``_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar

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


# --- message values -------------------------------------------------------


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
    TYPE: ClassVar[MsgType] = MsgType.SESS_INIT
    keepalive_s: int
    segment_mru: int  # bytes
    transfer_mru: int  # bytes
    node_id: str  # "" when the peer sent none
    extensions: tuple[ExtensionItem, ...] = ()


@dataclass(frozen=True, slots=True)
class SessTerm:
    TYPE: ClassVar[MsgType] = MsgType.SESS_TERM
    flags: int
    reason: int

    @property
    def reply(self) -> bool:
        return bool(self.flags & SessTermFlag.REPLY)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """An XFER_SEGMENT up to its Data length; ``length`` data octets follow."""

    TYPE: ClassVar[MsgType] = MsgType.XFER_SEGMENT

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
    TYPE: ClassVar[MsgType] = MsgType.XFER_ACK
    flags: int
    transfer_id: int
    length: int  # total octets acknowledged so far


@dataclass(frozen=True, slots=True)
class XferRefuse:
    TYPE: ClassVar[MsgType] = MsgType.XFER_REFUSE
    reason: int
    transfer_id: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    TYPE: ClassVar[MsgType] = MsgType.KEEPALIVE


@dataclass(frozen=True, slots=True)
class MsgReject:
    TYPE: ClassVar[MsgType] = MsgType.MSG_REJECT
    reason: int
    rejected_header: int


Message = SessInit | SessTerm | SegmentHeader | XferAck | XferRefuse | Keepalive | MsgReject


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
