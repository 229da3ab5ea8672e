"""Administrative records (RFC 9171 section 6.1): bundle status reports, no I/O.

An administrative record is the payload of a bundle flagged ADMIN_RECORD:
``[record type, content]``. Type 1, the bundle status report, says that a
node received, forwarded, delivered or deleted a subject bundle, why
(:class:`ReasonCode`) and, when the subject asked for it, at what DTN time (ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from hilnet.bundle import cbor
from hilnet.bundle.blocks import Bundle, BundleFlag, BundleId, CanonicalBlock, PrimaryBlock
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import NULL_EID, Eid, read_eid
from hilnet.errors import BlockError, BundleEncodeError, CborError

STATUS_REPORT = 1  # administrative record type code


class ReasonCode(IntEnum):
    """Bundle status report reason codes (section 6.1.1, table 1)."""

    NO_INFORMATION = 0
    LIFETIME_EXPIRED = 1
    FORWARDED_UNIDIRECTIONAL = 2
    TRANSMISSION_CANCELED = 3
    DEPLETED_STORAGE = 4
    DESTINATION_UNAVAILABLE = 5
    NO_ROUTE = 6
    NO_TIMELY_CONTACT = 7
    BLOCK_UNINTELLIGIBLE = 8
    HOP_LIMIT_EXCEEDED = 9
    TRAFFIC_PARED = 10
    BLOCK_UNSUPPORTED = 11


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One status assertion; ``time_ms`` (DTN time) only when asserted and asked for."""

    asserted: bool = False
    time_ms: int | None = None


NOT_ASSERTED = StatusItem()


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A bundle status report about the bundle ``subject``.

    ``reason`` is a :class:`ReasonCode` or another registered code (an int).
    """

    subject: BundleId
    received: StatusItem = NOT_ASSERTED
    forwarded: StatusItem = NOT_ASSERTED
    delivered: StatusItem = NOT_ASSERTED
    deleted: StatusItem = NOT_ASSERTED
    reason: int = ReasonCode.NO_INFORMATION


@dataclass(frozen=True, slots=True)
class UnknownRecord:
    """An administrative record of a type this codec does not read; ``content`` is raw CBOR."""

    record_type: int
    content: bytes


def _item(item: StatusItem) -> bytes:
    if item.asserted and item.time_ms is not None:
        return b"\x82\xf5" + cbor.uint(item.time_ms)
    return b"\x81" + cbor.boolean(item.asserted)


def encode_status_report(report: StatusReport) -> bytes:
    """The administrative record ``[1, report]`` as CBOR bytes (a bundle payload)."""
    s = report.subject
    fragment = s.fragment_offset is not None
    if s.fragment_offset is not None and s.fragment_length is None:
        raise BundleEncodeError("a fragment subject needs both fragment offset and length")
    for item in (report.received, report.forwarded, report.delivered, report.deleted):
        if item.time_ms is not None and not item.asserted:
            raise BundleEncodeError("a status time is only reported with an asserted status")
    parts = [
        b"\x82\x01",
        b"\x86" if fragment else b"\x84",
        b"\x84",
        _item(report.received),
        _item(report.forwarded),
        _item(report.delivered),
        _item(report.deleted),
        cbor.uint(int(report.reason)),
        s.source.to_cbor(),
        b"\x82" + cbor.uint(s.creation_ms) + cbor.uint(s.sequence),
    ]
    if s.fragment_offset is not None and s.fragment_length is not None:
        parts.append(cbor.uint(s.fragment_offset) + cbor.uint(s.fragment_length))
    return b"".join(parts)


def _read_item(data: bytes, pos: int, end: int, what: str) -> tuple[StatusItem, int]:
    at = pos
    n, pos = cbor.read_array(data, pos, end, what)
    if n not in (1, 2):
        raise BlockError(f"{what} must have 1 or 2 items, has {n}", at)
    asserted, pos = cbor.read_bool(data, pos, end, f"{what} indicator")
    time_ms = None
    if n == 2:
        if not asserted:
            raise BlockError(f"{what} carries a time but is not asserted", at)
        time_ms, pos = cbor.read_uint(data, pos, end, f"{what} time")
    return StatusItem(asserted, time_ms), pos


def decode_admin_record(data: bytes) -> StatusReport | UnknownRecord:
    """Decode an administrative record (the payload of an ADMIN_RECORD bundle).

    Raises :class:`~hilnet.errors.BundleDecodeError` subclasses with offsets
    into ``data``.
    """
    data = bytes(data)
    end = len(data)
    pos = cbor.read_array_of(data, 0, end, 2, "administrative record")
    record_type, pos = cbor.read_uint(data, pos, end, "record type")
    report: StatusReport | UnknownRecord
    if record_type != STATUS_REPORT:
        stop = cbor.skip_item(data, pos, end)
        report = UnknownRecord(record_type, data[pos:stop])
    else:
        report, stop = _read_status_report(data, pos, end)
    if stop != end:
        raise CborError(f"{end - stop} trailing bytes after the administrative record", stop)
    return report


def _read_status_report(data: bytes, pos: int, end: int) -> tuple[StatusReport, int]:
    at = pos
    n, pos = cbor.read_array(data, pos, end, "status report")
    if n not in (4, 6):
        raise BlockError(f"a status report has 4 or 6 items, has {n}", at)
    info_at = pos
    count, pos = cbor.read_array(data, pos, end, "status information")
    if count < 4:
        raise BlockError(f"status information needs at least 4 items, has {count}", info_at)
    received, pos = _read_item(data, pos, end, "'received' status")
    forwarded, pos = _read_item(data, pos, end, "'forwarded' status")
    delivered, pos = _read_item(data, pos, end, "'delivered' status")
    deleted, pos = _read_item(data, pos, end, "'deleted' status")
    for _ in range(count - 4):  # later specifications may add assertions: step over them
        pos = cbor.skip_item(data, pos, end)
    reason_at = pos
    reason, pos = cbor.read_uint(data, pos, end, "reason code")
    if reason <= max(ReasonCode):
        reason = ReasonCode(reason)
    elif reason > 255:
        raise BlockError(f"reason code {reason} is over 255", reason_at)
    source, pos = read_eid(data, pos, end, "subject source")
    pos = cbor.read_array_of(data, pos, end, 2, "subject creation timestamp")
    creation, pos = cbor.read_uint(data, pos, end, "subject creation time")
    sequence, pos = cbor.read_uint(data, pos, end, "subject sequence number")
    offset = length = None
    if n == 6:
        offset, pos = cbor.read_uint(data, pos, end, "subject fragment offset")
        length, pos = cbor.read_uint(data, pos, end, "subject fragment length")
    subject = BundleId(source, creation, sequence, offset, length)
    return StatusReport(subject, received, forwarded, delivered, deleted, reason), pos


def status_report_for(
    subject: Bundle,
    *,
    received: bool = False,
    forwarded: bool = False,
    delivered: bool = False,
    deleted: bool = False,
    reason: int = ReasonCode.NO_INFORMATION,
    now_ms: int | None = None,
) -> StatusReport:
    """A report on ``subject``; times (DTN ms ``now_ms``) go in only if the subject asked for them."""
    with_time = now_ms is not None and bool(subject.primary.flags & BundleFlag.STATUS_TIME_REQUESTED)

    def item(flag: bool) -> StatusItem:
        return StatusItem(True, now_ms if with_time else None) if flag else NOT_ASSERTED

    return StatusReport(subject.id, item(received), item(forwarded), item(delivered), item(deleted), reason)


def report_bundle(
    report: StatusReport,
    *,
    source: Eid,
    destination: Eid,
    creation_ms: int,
    sequence: int,
    lifetime_ms: int,
    crc_type: CrcType = CrcType.CRC32C,
) -> Bundle:
    """A bundle from node ``source`` carrying ``report`` to ``destination`` (the subject's report-to).

    Flags follow section 4.2.3: ADMIN_RECORD, no status report requests.
    """
    primary = PrimaryBlock(
        destination, source, NULL_EID, creation_ms, sequence, lifetime_ms, BundleFlag.ADMIN_RECORD, crc_type
    )
    payload = CanonicalBlock(1, 1, encode_status_report(report), crc_type=crc_type)
    return Bundle(primary, (payload,))
