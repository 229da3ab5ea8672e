"""``hilnet bundle``: make a BPv7 bundle, or show what one holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys

import click

from hilnet.bundle.admin import StatusReport, decode_admin_record
from hilnet.bundle.blocks import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    bundle_age_ms,
    dtn_ms_from_unix_ns,
    hop_count,
    previous_node,
    unix_ns_from_dtn_ms,
)
from hilnet.bundle.codec import DEFAULT_MAX_SIZE, decode_bundle, encode_block, encode_bundle, encode_primary_block
from hilnet.bundle.cos import MAX_ORDINAL, ClassOfService, Priority, class_of_service
from hilnet.bundle.crc import CRC_SIZE, CrcType
from hilnet.bundle.make import make_bundle
from hilnet.clock import realtime_ns
from hilnet.commands.bundle_security import SECURITY_TYPES, accepted_here, secured, security_content
from hilnet.errors import BundleError, InputError
from hilnet.units import format_duration, parse_duration, parse_size

_CRC_CHOICES = {"16": CrcType.CRC16, "32": CrcType.CRC32C, "none": CrcType.NONE}
# the class names of the scenario language, and ION's
_CLASS_CHOICES = {
    "bulk": Priority.BULK,
    "normal": Priority.STANDARD,
    "standard": Priority.STANDARD,
    "expedited": Priority.EXPEDITED,
}


def _flag_names(flag_type, value: int) -> list[str]:
    names = [m.name for m in flag_type if m.value and value & m.value == m.value]
    unknown = value & ~sum(m.value for m in flag_type)
    if unknown:
        names.append(f"0x{unknown:x}")
    return names


def _iso(dtn_ms: int) -> str | None:
    if dtn_ms == 0:
        return None
    t = dt.datetime.fromtimestamp(unix_ns_from_dtn_ms(dtn_ms) / 1e9, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _crc_hex(encoded: bytes, crc_type: CrcType) -> str | None:
    return encoded[-CRC_SIZE[crc_type] :].hex() if crc_type else None


def _type_name(code: int) -> str:
    try:
        return BlockType(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def _content(bundle: Bundle, b: CanonicalBlock) -> dict:
    """What ``show`` says about the content of block ``b``."""
    if b.block_type == BlockType.HOP_COUNT:
        hc = hop_count(bundle)
        return {} if hc is None else {"hop_limit": hc.limit, "hop_count": hc.count}
    if b.block_type == BlockType.BUNDLE_AGE:
        return {"age_ms": bundle_age_ms(bundle)}
    if b.block_type == BlockType.PREVIOUS_NODE:
        return {"previous_node": str(previous_node(bundle))}
    if b.block_type == BlockType.QUALITY_OF_SERVICE:
        cos = class_of_service(bundle)
        return {"class": cos.priority.name.lower(), "ordinal": cos.ordinal, "qos_flags": cos.flags} | {
            "data_label": cos.data_label
        }
    if b.block_type == BlockType.PAYLOAD:
        return {"sha256": hashlib.sha256(b.data).hexdigest()}
    if b.block_type in SECURITY_TYPES:
        return security_content(bundle, b)
    return {"content": _generic_cbor(b.data)}


def describe(bundle: Bundle, size: int) -> dict:
    """The JSON-able description of a decoded bundle that ``show --json`` prints."""
    p = bundle.primary
    blocks = []
    for b in bundle.blocks:
        entry = {
            "type": int(b.block_type),
            "type_name": _type_name(b.block_type),
            "number": b.number,
            "flags": int(b.flags),
            "flag_names": _flag_names(BlockFlag, int(b.flags)),
            "crc_type": CrcType(b.crc_type).name,
            "crc": _crc_hex(encode_block(b), b.crc_type),
            "length": len(b.data),
        }
        entry.update(_content(bundle, b))
        blocks.append(entry)
    out = {
        "size": size,
        "version": p.version,
        "flags": int(p.flags),
        "flag_names": _flag_names(BundleFlag, int(p.flags)),
        "destination": str(p.destination),
        "source": str(p.source),
        "report_to": str(p.report_to),
        "creation_ms": p.creation_ms,
        "creation_time": _iso(p.creation_ms),
        "sequence": p.sequence,
        "lifetime_ms": p.lifetime_ms,
        "crc_type": CrcType(p.crc_type).name,
        "crc": _crc_hex(encode_primary_block(p), p.crc_type),
        "fragment_offset": p.fragment_offset,
        "total_adu_length": p.total_adu_length,
        "payload_length": len(bundle.payload),
        "payload_sha256": hashlib.sha256(bundle.payload).hexdigest(),
        # what the bundle asks for: standard unless a type-193 block says otherwise
        "class_of_service": class_of_service(bundle).priority.name.lower(),
        "blocks": blocks,
    }
    if p.is_admin_record:
        try:
            record = decode_admin_record(bundle.payload)
        except BundleError as e:
            out["admin_record"] = {"error": str(e)}
        else:
            out["admin_record"] = _describe_record(record)
    return out


_SHOW_CBOR_LIMIT = 4096  # bytes of an unknown block decoded for display; more is shown as a length


def _plain(value):
    """cbor2's Python value as JSON: bytes as hex, tags as {"tag", "value"}."""
    import cbor2

    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, cbor2.CBORTag):
        return {"tag": value.tag, "value": _plain(value.value)}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _generic_cbor(data: bytes):
    """The content of a block this codec does not interpret, decoded as plain CBOR.

    The codec's own reader knows only BPv7's structures; cbor2 (a general,
    independent decoder) shows a person what an unknown extension block holds.
    """
    if len(data) > _SHOW_CBOR_LIMIT:
        return {"undecoded_bytes": len(data)}
    import io

    import cbor2

    errors = (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError, EOFError)
    decoder = cbor2.CBORDecoder(io.BytesIO(data))
    try:
        value = decoder.decode()
    except errors:
        return {"not_cbor": data.hex()}
    if "break_marker" in type(value).__name__.lower():  # a lone 0xff is no item
        return {"not_cbor": data.hex()}
    try:
        decoder.decode()  # one whole item and nothing after it, or it is not this block's CBOR
    except errors:
        return {"cbor": _plain(value)}
    return {"not_cbor": data.hex()}


def _describe_record(record) -> dict:
    if not isinstance(record, StatusReport):
        return {"record_type": record.record_type, "content": _generic_cbor(record.content)}
    items = {}
    for name in ("received", "forwarded", "delivered", "deleted"):
        item = getattr(record, name)
        items[name] = {"asserted": item.asserted, "time_ms": item.time_ms}
    s = record.subject
    return {
        "record_type": 1,
        "status": items,
        "reason": int(record.reason),
        "reason_name": getattr(record.reason, "name", None),
        "subject": {
            "source": str(s.source),
            "creation_ms": s.creation_ms,
            "sequence": s.sequence,
            "fragment_offset": s.fragment_offset,
            "fragment_length": s.fragment_length,
        },
    }


def _text(d: dict) -> str:
    lines = [
        f"bundle: {d['size']} bytes, BPv{d['version']}, {d['source']} -> {d['destination']}",
        f"  flags       0x{d['flags']:x} {' '.join(d['flag_names']) or '(none)'}",
        f"  report-to   {d['report_to']}",
        f"  created     {d['creation_time'] or 'unknown'} (DTN {d['creation_ms']} ms), sequence {d['sequence']}",
        f"  lifetime    {format_duration(d['lifetime_ms'] * 1_000_000)} ({d['lifetime_ms']} ms)",
        f"  crc         {d['crc_type']}" + (f" 0x{d['crc']}" if d["crc"] else ""),
        f"  class       {d['class_of_service']}",
    ]
    if d["fragment_offset"] is not None:
        lines.append(f"  fragment    offset {d['fragment_offset']} of {d['total_adu_length']} bytes")
    for b in d["blocks"]:
        crc = f"{b['crc_type']}" + (f" 0x{b['crc']}" if b["crc"] else "")
        flags = " ".join(b["flag_names"]) or "none"
        line = (
            f"block {b['number']}: {b['type_name']} (type {b['type']}), {b['length']} bytes, flags {flags}, crc {crc}"
        )
        keys = ("hop_limit", "hop_count", "age_ms", "previous_node", "class", "ordinal", "qos_flags", "data_label")
        extra = {k: b[k] for k in (*keys, "sha256") if k in b}
        for k in ("content", "security"):
            if k in b:
                extra[k] = json.dumps(b[k])
        if "encrypted_by" in b:
            extra["encrypted by BCB"] = b["encrypted_by"]
        if extra:
            line += "\n  " + ", ".join(f"{k} {v}" for k, v in extra.items())
        lines.append(line)
    if "admin_record" in d:
        lines.append(f"administrative record: {json.dumps(d['admin_record'])}")
    return "\n".join(lines)


@click.group(name="bundle")
def command() -> None:
    """Make and inspect BPv7 (RFC 9171) bundles."""


@command.command()
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for a machine.")
@click.option(
    "--max-size",
    default=str(DEFAULT_MAX_SIZE),
    show_default=True,
    help="Largest bundle accepted (bytes, or 300KiB...).",
)
@click.option("--no-crc-check", is_flag=True, help="Do not verify block CRCs.")
@click.option(
    "--keys",
    type=click.Path(dir_okay=False),
    help="Accept the BIBs and BCBs as the destination would, with this key file: decrypt, verify, then show.",
)
def show(file, as_json: bool, max_size: str, no_crc_check: bool, keys: str | None) -> None:
    """Print the blocks and fields of the bundle in FILE (- for stdin).

    Malformed input exits with status 2 and says what is wrong at which byte;
    with --keys, so does a security block that does not verify or decrypt.
    """
    limit = parse_size(max_size)
    data = file.read(limit + 1)
    bundle = decode_bundle(data, max_size=limit, check_crc=not no_crc_check)
    if keys is not None:
        bundle = accepted_here(bundle, keys)
    d = describe(bundle, len(data))
    click.echo(json.dumps(d, indent=2) if as_json else _text(d))


@command.command()
@click.option("--source", required=True, help="Source EID (ipn:N.M, dtn://node/svc).")
@click.option("--dest", required=True, help="Destination EID.")
@click.option("--payload", "payload_file", type=click.File("rb"), help="Payload from this file (- for stdin).")
@click.option("--size", help="Or a generated payload of this size (bytes, 64KiB...).")
@click.option("--lifetime", default="1d", show_default=True, help="Bundle lifetime (1h, 30m...).")
@click.option(
    "--crc",
    type=click.Choice(list(_CRC_CHOICES)),
    default="32",
    show_default=True,
    help="CRC of every block: CRC-16/X.25, CRC-32C or none.",
)
@click.option("--seq", default=0, show_default=True, type=click.IntRange(0), help="Creation sequence number.")
@click.option("--report-to", default="dtn:none", show_default=True, help="Report-to EID.")
@click.option("--hop-limit", type=click.IntRange(1, 255), help="Add a Hop Count block with this limit.")
@click.option(
    "--class",
    "klass",
    type=click.Choice(list(_CLASS_CHOICES)),
    help="Add a class-of-service block (type 193, as ION) with this class; without it the bundle is standard.",
)
@click.option(
    "--ordinal",
    type=click.IntRange(0, MAX_ORDINAL),
    help="Order among expedited bundles, 0..254 (higher first); needs --class expedited.",
)
@click.option(
    "--sign",
    type=click.Path(dir_okay=False),
    help="Add a BIB (BIB-HMAC-SHA2, HMAC-SHA384) over the payload with the source node's integrity key from this key file.",
)
@click.option(
    "--encrypt",
    type=click.Path(dir_okay=False),
    help="Add a BCB (BCB-AES-GCM, AES-256) over the payload (and the BIB) under the source node's confidentiality key from this key file.",
)
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), help="Write here instead of stdout.")
def make(
    source, dest, payload_file, size, lifetime, crc, seq, report_to, hop_limit, klass, ordinal, sign, encrypt, out
) -> None:
    """Write one bundle (to --out, or to stdout when it is not a terminal)."""
    if (payload_file is None) == (size is None):
        raise click.UsageError("give exactly one of --payload FILE and --size N")
    if ordinal is not None and klass != "expedited":
        raise click.UsageError("--ordinal orders expedited bundles only; give --class expedited with it")
    cos = None if klass is None else ClassOfService(_CLASS_CHOICES[klass], ordinal or 0)
    if payload_file is not None:
        payload = payload_file.read()
    else:
        n = parse_size(size)
        # a recognisable, cheap pattern: byte i is i mod 256
        payload = (bytes(range(256)) * (n // 256 + 1))[:n]
    lifetime_ns = parse_duration(lifetime)
    if lifetime_ns % 1_000_000:
        raise InputError(f"lifetime {lifetime!r} is not a whole number of milliseconds")
    if out is None and sys.stdout.isatty():
        raise click.UsageError("refusing to write a binary bundle to a terminal; use --out FILE or a pipe")
    # Library code takes the wall clock as an argument; the CLI reads it here.
    creation_ms = dtn_ms_from_unix_ns(realtime_ns())
    bundle = make_bundle(
        source,
        dest,
        payload,
        lifetime_ns // 1_000_000,
        creation_ms,
        seq,
        _CRC_CHOICES[crc],
        report_to=report_to,
        hop_limit=hop_limit,
        cos=cos,
    )
    data = encode_bundle(secured(bundle, sign, encrypt))
    if out is None:
        click.echo(data, nl=False)  # click writes bytes to the binary stdout
    else:
        with open(out, "wb") as f:
            f.write(data)
