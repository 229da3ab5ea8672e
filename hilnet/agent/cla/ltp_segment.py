"""LTP segments (RFC 5326 section 3): the frozen types and their encoding, sans-I/O.

Every segment is one UDP datagram (RFC 7122). The header is the version and
type octet, the session id (originator engine id and session number, both
SDNVs) and an octet of extension counts; header and trailer extensions are
parsed (tag, SDNV length, value) and kept but never acted on, as the RFC lets
an engine do for extensions it does not know. Every number on the wire is an
SDNV (RFC 5326 section 2.2 / RFC 6256; :mod:`~hilnet.agent.cla.sdnv`, shared with
TCPCLv3). :func:`decode` bounds everything it reads by the datagram: a
length or count that points past the end raises :class:`~hilnet.errors.WireError`
with a short ``reason``, never IndexError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from hilnet.agent.cla.sdnv import encode_sdnv, parse_sdnv
from hilnet.errors import WireError

VERSION = 0
MAX_CLAIMS = 1024  # reception claims in one report segment we accept or write (one datagram holds fewer)


class SegType(IntEnum):
    """The segment type codes of RFC 5326 section 3.1.1 (undefined codes 5, 6, 10 and 11 are refused)."""

    RED = 0  # red data, not a checkpoint
    RED_CP = 1  # red data, checkpoint
    RED_CP_EORP = 2  # red data, checkpoint, end of the red part
    RED_CP_EORP_EOB = 3  # red data, checkpoint, end of the red part and of the block
    GREEN = 4
    GREEN_EOB = 7
    REPORT = 8  # RS
    REPORT_ACK = 9  # RA
    CANCEL_FROM_SENDER = 12  # CS
    CANCEL_ACK_TO_SENDER = 13  # CAS
    CANCEL_FROM_RECEIVER = 14  # CR
    CANCEL_ACK_TO_RECEIVER = 15  # CAR


DATA_TYPES = frozenset({SegType.RED, SegType.RED_CP, SegType.RED_CP_EORP, SegType.RED_CP_EORP_EOB})
DATA_TYPES |= {SegType.GREEN, SegType.GREEN_EOB}
CHECKPOINT_TYPES = frozenset({SegType.RED_CP, SegType.RED_CP_EORP, SegType.RED_CP_EORP_EOB})


class CancelReason(IntEnum):
    """Reason codes of cancel segments (RFC 5326 section 3.2.4)."""

    USR_CNCLD = 0  # the client service cancelled the session
    UNREACH = 1  # unreachable client service
    RLEXC = 2  # retransmission limit exceeded
    MISCOLORED = 3  # red data after green, or green before red
    SYS_CNCLD = 4  # a system error (here: the store refused the bundle, a limit was hit)
    RXMTCYCEXC = 5  # retransmission-cycles limit exceeded


@dataclass(frozen=True, slots=True)
class Extension:
    """A header or trailer extension: ``tag`` (0x00 authentication, 0x01 cookie...) and its value."""

    tag: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """A reception claim: ``length`` octets received from ``offset`` (relative to the report's lower bound)."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class DataSeg:
    """A red or green data segment; ``checkpoint`` and ``report`` serials are set on checkpoints (else 0)."""

    client: int
    offset: int
    data: bytes
    checkpoint: int = 0
    report: int = 0


@dataclass(frozen=True, slots=True)
class ReportSeg:
    """A report segment (RS): which data of [lower, upper) arrived, answering checkpoint ``checkpoint``."""

    serial: int
    checkpoint: int
    upper: int
    lower: int
    claims: tuple[Claim, ...]


@dataclass(frozen=True, slots=True)
class ReportAck:
    serial: int


@dataclass(frozen=True, slots=True)
class Cancel:
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class CancelAck:
    pass


Content = DataSeg | ReportSeg | ReportAck | Cancel | CancelAck


@dataclass(frozen=True, slots=True)
class Segment:
    """One LTP segment of session (``engine``, ``session``): ``engine`` is the session's originator."""

    type: SegType
    engine: int
    session: int
    content: Content
    headers: tuple[Extension, ...] = field(default=())
    trailers: tuple[Extension, ...] = field(default=())

    @property
    def to_sender(self) -> bool:
        """True for segments a receiver sends back to the session's originator (RS, CAS, CR)."""
        return self.type in (SegType.REPORT, SegType.CANCEL_ACK_TO_SENDER, SegType.CANCEL_FROM_RECEIVER)


# --- SDNV ---------------------------------------------------------------------------------------


sdnv = encode_sdnv  # the one SDNV codec, shared with TCPCLv3 (hilnet.agent.cla.sdnv)


class _Reader:
    """Reads one datagram; every read is bounded by its end."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def octet(self, what: str) -> int:
        if self.pos >= len(self.buf):
            raise WireError("truncated", f"the datagram ends before the {what} (at offset {self.pos})")
        self.pos += 1
        return self.buf[self.pos - 1]

    def sdnv(self, what: str) -> int:
        try:
            parsed = parse_sdnv(self.buf, self.pos)
        except WireError as e:
            raise WireError("sdnv_too_long", f"the {what} at offset {self.pos}: {e}") from None
        if parsed is None:
            raise WireError("truncated", f"the datagram ends inside the {what} (at offset {self.pos})")
        value, self.pos = parsed
        return value

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.buf) - self.pos:
            raise WireError("length_past_end", f"the {what} claims {n} octets, {len(self.buf) - self.pos} remain")
        self.pos += n
        return self.buf[self.pos - n : self.pos]


# --- encode -------------------------------------------------------------------------------------


def _ext(e: Extension) -> bytes:
    return bytes((e.tag,)) + sdnv(len(e.value)) + e.value


def _content(seg: Segment) -> bytes:
    c = seg.content
    if isinstance(c, DataSeg):
        out = sdnv(c.client) + sdnv(c.offset) + sdnv(len(c.data))
        if seg.type in CHECKPOINT_TYPES:
            out += sdnv(c.checkpoint) + sdnv(c.report)
        return out + c.data
    if isinstance(c, ReportSeg):
        parts = [sdnv(c.serial), sdnv(c.checkpoint), sdnv(c.upper), sdnv(c.lower), sdnv(len(c.claims))]
        parts += [sdnv(k.offset) + sdnv(k.length) for k in c.claims]
        return b"".join(parts)
    if isinstance(c, ReportAck):
        return sdnv(c.serial)
    if isinstance(c, Cancel):
        return bytes((int(c.reason),))
    return b""


def encode(seg: Segment) -> bytes:
    """The datagram of ``seg``."""
    if len(seg.headers) > 15 or len(seg.trailers) > 15:
        raise ValueError("at most 15 header and 15 trailer extensions")
    head = bytes(((VERSION << 4) | int(seg.type),)) + sdnv(seg.engine) + sdnv(seg.session)
    head += bytes(((len(seg.headers) << 4) | len(seg.trailers),))
    head += b"".join(_ext(e) for e in seg.headers)
    return head + _content(seg) + b"".join(_ext(e) for e in seg.trailers)


# --- decode -------------------------------------------------------------------------------------


def decode(datagram: bytes) -> Segment:
    """The segment one datagram holds; raises WireError (``reason`` a counter key) if it is not one."""
    r = _Reader(bytes(datagram))
    first = r.octet("version octet")
    if first >> 4 != VERSION:
        raise WireError("bad_version", f"LTP version {first >> 4}, expected {VERSION}", first)
    code = first & 0x0F
    if code not in SegType._value2member_map_:
        raise WireError("undefined_segment_type", f"segment type {code} is undefined in RFC 5326", first)
    kind = SegType(code)
    engine = r.sdnv("session originator")
    session = r.sdnv("session number")
    counts = r.octet("extension counts")
    headers = tuple(_read_ext(r, "header extension") for _ in range(counts >> 4))
    content = _read_content(r, kind)
    trailers = tuple(_read_ext(r, "trailer extension") for _ in range(counts & 0x0F))
    if r.pos != len(r.buf):
        raise WireError("trailing_octets", f"{len(r.buf) - r.pos} octets after the segment's end")
    return Segment(kind, engine, session, content, headers, trailers)


def _read_ext(r: _Reader, what: str) -> Extension:
    tag = r.octet(what + " tag")
    n = r.sdnv(what + " length")
    return Extension(tag, r.take(n, what + " value"))


def _read_content(r: _Reader, kind: SegType) -> Content:
    if kind in DATA_TYPES:
        client, offset, n = r.sdnv("client service id"), r.sdnv("offset"), r.sdnv("length")
        cp = rs = 0
        if kind in CHECKPOINT_TYPES:
            cp, rs = r.sdnv("checkpoint serial number"), r.sdnv("report serial number")
        return DataSeg(client, offset, r.take(n, "client service data"), cp, rs)
    if kind is SegType.REPORT:
        serial, cp = r.sdnv("report serial number"), r.sdnv("checkpoint serial number")
        upper, lower, count = r.sdnv("upper bound"), r.sdnv("lower bound"), r.sdnv("claim count")
        if count > MAX_CLAIMS:
            raise WireError("too_many_claims", f"{count} reception claims, at most {MAX_CLAIMS}")
        claims = tuple(Claim(r.sdnv("claim offset"), r.sdnv("claim length")) for _ in range(count))
        return ReportSeg(serial, cp, upper, lower, claims)
    if kind is SegType.REPORT_ACK:
        return ReportAck(r.sdnv("report serial number"))
    if kind in (SegType.CANCEL_FROM_SENDER, SegType.CANCEL_FROM_RECEIVER):
        code = r.octet("cancel reason code")
        if code not in CancelReason._value2member_map_:
            raise WireError("unknown_cancel_reason", f"cancel reason code {code}")
        return Cancel(CancelReason(code))
    return CancelAck()


def check_report(rs: ReportSeg) -> str | None:
    """Why ``rs``'s claims are inconsistent (a counter key), or None if they are in order and in scope."""
    if rs.lower > rs.upper:
        return "report_bounds_reversed"
    end = 0
    for k in rs.claims:
        if k.length == 0 or k.offset < end:
            return "claims_out_of_order"
        end = k.offset + k.length
    if rs.lower + end > rs.upper:
        return "claim_out_of_range"
    return None
