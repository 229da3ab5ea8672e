"""TCPCLv3 vocabulary (RFC 7242): code tables and message values, no octets.

Version 3 is the TCP convergence layer NASA's ION speaks (``tcpcli``/``tcpclo``).
Its messages are one octet (type in the high four bits, flags or a reason in the
low four) followed by SDNV-encoded lengths; there are no transfer ids, so acks
and refusals apply to the oldest bundle not yet finished, first in first out
(RFC 7242 5.4). :mod:`hilnet.agent.cla.tcpclv3_wire` turns these values into
octets and back. Sizes are in bytes, times in seconds where a field is ``_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import ClassVar

MAGIC = b"dtn!"
VERSION = 3
DEFAULT_PORT = 4556  # the TCPCL port, shared with version 4 (RFC 7242 section 8)
U16_MAX = 0xFFFF


class ContactFlag(IntFlag):
    """Contact header flags (RFC 7242 4.1). Each holds for a session only if both sides set it."""

    NONE = 0x00
    SEGMENT_ACKS = 0x01  # acknowledge bundle segments
    REACTIVE_FRAGMENTS = 0x02  # reactive fragmentation (not supported here: never set)
    REFUSALS = 0x04  # bundle refusal (needs SEGMENT_ACKS)
    LENGTHS = 0x08  # LENGTH messages before each bundle


class MsgType(IntEnum):
    """Message types, the high four bits of a message's first octet (RFC 7242 Table 2)."""

    DATA_SEGMENT = 0x1
    ACK_SEGMENT = 0x2
    REFUSE_BUNDLE = 0x3
    KEEPALIVE = 0x4
    SHUTDOWN = 0x5
    LENGTH = 0x6


class SegmentFlag(IntFlag):
    """DATA_SEGMENT flags, the low four bits (RFC 7242 5.2)."""

    NONE = 0x0
    END = 0x1
    START = 0x2


class ShutdownFlag(IntFlag):
    """SHUTDOWN flags: which optional fields follow (RFC 7242 6.1)."""

    NONE = 0x0
    DELAY = 0x1  # an SDNV reconnection delay (s)
    REASON = 0x2  # a one-octet reason code


class RefuseReason(IntEnum):
    """REFUSE_BUNDLE reason codes, the low four bits (RFC 7242 5.4)."""

    UNKNOWN = 0x0
    COMPLETED = 0x1  # the receiver already has the whole bundle
    NO_RESOURCES = 0x2  # the receiver's resources are exhausted
    RETRANSMIT = 0x3  # a problem at the receiver: send the whole bundle again


class ShutdownReason(IntEnum):
    """SHUTDOWN reason codes (RFC 7242 6.1)."""

    IDLE_TIMEOUT = 0x00
    VERSION_MISMATCH = 0x01
    BUSY = 0x02


# --- message values -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactHeader:
    """What each side sends first: version, flags, keepalive interval (s) and its node's EID."""

    version: int
    flags: int
    keepalive_s: int
    eid: str


@dataclass(frozen=True, slots=True)
class DataSegment:
    """A DATA_SEGMENT's header; ``length`` octets of bundle follow it on the wire."""

    TYPE: ClassVar[MsgType] = MsgType.DATA_SEGMENT
    flags: int
    length: int

    @property
    def start(self) -> bool:
        return bool(self.flags & SegmentFlag.START)

    @property
    def end(self) -> bool:
        return bool(self.flags & SegmentFlag.END)


@dataclass(frozen=True, slots=True)
class AckSegment:
    """Octets of the oldest unfinished bundle received so far (cumulative, RFC 7242 5.3)."""

    TYPE: ClassVar[MsgType] = MsgType.ACK_SEGMENT
    length: int


@dataclass(frozen=True, slots=True)
class RefuseBundle:
    TYPE: ClassVar[MsgType] = MsgType.REFUSE_BUNDLE
    reason: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    TYPE: ClassVar[MsgType] = MsgType.KEEPALIVE


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The end of a session; ``reason`` and ``delay_s`` (wait before reconnecting) are optional."""

    TYPE: ClassVar[MsgType] = MsgType.SHUTDOWN
    reason: int | None = None
    delay_s: int | None = None


@dataclass(frozen=True, slots=True)
class Length:
    """The size of the next bundle (bytes), sent before its first segment when both asked for it."""

    TYPE: ClassVar[MsgType] = MsgType.LENGTH
    length: int


Message = DataSegment | AckSegment | RefuseBundle | Keepalive | Shutdown | Length
