"""Wireshark's BPv7 dissector (through tshark) reads our bundles as we wrote them.

Each bundle rides alone in a synthetic IPv4/UDP datagram to port 4556, which
Wireshark dissects as a raw BPv7 bundle (UDPCL). The dissector must find no
malformation, every CRC good, and the same EIDs, sequence and payload length.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hilnet.bundle.admin import StatusItem, StatusReport, report_bundle
from hilnet.bundle.blocks import BundleFlag, set_previous_node
from hilnet.bundle.codec import encode_bundle
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import parse_eid
from hilnet.bundle.fragment import fragment
from hilnet.bundle.make import make_bundle

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")

FIELDS = [
    "bpv7.primary.src_uri",
    "bpv7.primary.dst_uri",
    "bpv7.create_ts.seqno",
    "bpv7.crc_status",
    "bpv7.canonical.type_code",
    "bpv7.canonical.data",
    "bpv7.primary.frag_offset",
    "_ws.expert",
    "_ws.malformed",
]
# Wireshark's only complaint about a good bundle: it has no dissector for the payload's content.
HARMLESS_EXPERT = "Expert Info (Warning/Undecoded): Unknown type code"


def _bundles():
    out = []
    for i, crc in enumerate([CrcType.CRC16, CrcType.CRC32C, CrcType.NONE]):
        for size in (0, 100, 30_000):
            b = make_bundle(
                "ipn:1.0",
                "dtn://ground/photos",
                bytes(range(256)) * (size // 256) + bytes(size % 256),
                3_600_000,
                creation_ms=800_000_000_000,
                seq=len(out),
                crc=crc,
                hop_limit=16,
                flags=BundleFlag.REPORT_DELIVERY,
            )
            out.append(set_previous_node(b, parse_eid("ipn:7.0")) if i == 1 else b)
    whole = make_bundle("dtn://iss/", "ipn:4.1", bytes(5000), 60_000, creation_ms=1, seq=99, crc=CrcType.CRC16)
    out += fragment(whole, 2000)
    report = StatusReport(out[0].id, received=StatusItem(True))
    out.append(
        report_bundle(
            report,
            source=parse_eid("ipn:4.0"),
            destination=parse_eid("ipn:1.0"),
            creation_ms=2,
            sequence=100,
            lifetime_ms=1000,
        )
    )
    return out


def _dissect(tmp_path, payloads: list[bytes]) -> list[dict[str, list[str]]]:
    from scapy.all import IP, UDP, Raw, wrpcap

    pcap = tmp_path / "bundles.pcap"
    wrpcap(str(pcap), [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=4556, dport=4556) / Raw(p) for p in payloads])
    args = [TSHARK, "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"]
    for f in FIELDS:
        args += ["-e", f]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = []
    for line in run.stdout.splitlines():
        values = line.split("\t")
        rows.append({f: (v.split("|") if v else []) for f, v in zip(FIELDS, values)})
    assert len(rows) == len(payloads)
    return rows


def test_wireshark_reads_our_bundles(tmp_path):
    bundles = _bundles()
    rows = _dissect(tmp_path, [encode_bundle(b) for b in bundles])
    for bundle, row in zip(bundles, rows):
        p = bundle.primary
        assert row["_ws.malformed"] == [], (bundle.id, row)
        assert [e for e in row["_ws.expert"] if e != HARMLESS_EXPERT] == [], (bundle.id, row)
        assert row["bpv7.primary.src_uri"] == [str(p.source)]
        assert row["bpv7.primary.dst_uri"] == [str(p.destination)]
        # (a status report repeats its subject's sequence number after the bundle's own)
        assert row["bpv7.create_ts.seqno"][0] == str(p.sequence)
        if p.is_admin_record:
            assert row["bpv7.create_ts.seqno"][1:] == ["0"]
        want_crc = [p.crc_type] + [b.crc_type for b in bundle.blocks]
        # Wireshark shows a status (1 = good) only for blocks that carry a CRC
        assert row["bpv7.crc_status"] == ["1"] * sum(1 for c in want_crc if c != CrcType.NONE)
        assert row["bpv7.canonical.type_code"] == [str(b.block_type) for b in bundle.blocks]
        assert row["bpv7.canonical.data"][-1] == str(len(bundle.payload))
        if p.is_fragment:
            assert row["bpv7.primary.frag_offset"] == [str(p.fragment_offset)]


def test_wireshark_sees_a_corrupted_crc(tmp_path):
    """The check above can fail: a flipped payload byte makes Wireshark report a bad CRC."""
    wire = bytearray(
        encode_bundle(make_bundle("ipn:1.0", "ipn:2.1", b"abcdef", 1000, creation_ms=1, crc=CrcType.CRC32C))
    )
    wire[wire.index(b"abcdef")] ^= 1
    (row,) = _dissect(tmp_path, [bytes(wire)])
    assert row["bpv7.crc_status"][0] == "1" and row["bpv7.crc_status"][-1] != "1"
