"""How many bundle bytes a link direction really carries: protocol overhead, stated.

The plan needs goodput, not line rate. These figures are estimates written down
once so that every capacity the plan prints can be traced to them:

Serial (UART): each byte costs ``bits_per_byte`` symbols (8N1: start + 8 data +
stop = 10). The serial convergence layer frames data SLIP-style (RFC 1055; see
docs/cla.md): DATA frames of :data:`SERIAL_FRAME_PAYLOAD` bytes, each costing
19 bytes of header and a 4-byte CRC-32C plus an END byte on either side; END
and ESC bytes are escaped to two bytes, which for random data (photos are
compressed) is 2 of 256 byte values.

Ethernet: each 1500-byte IP packet costs 1538 bytes on the wire (14 header +
8 preamble + 12 inter-frame gap + 4 FCS = 38; the "24 B" of preamble, gap and
FCS plus the 14-byte MAC header), and carries 1448 bytes of TCP payload after
20 bytes of IPv4 and 32 of TCP with timestamps.

Per bundle: about :data:`BUNDLE_OVERHEAD` bytes of BPv7 primary block, payload
block header and CRCs (RFC 9171, ipn EIDs), plus the BPSec blocks a stream asks
for (:func:`security_bytes`, measured on a sample bundle), and on Ethernet one TCPCLv4
XFER_SEGMENT header with its transfer-length extension (RFC 9174 5.2.2:
1 + 1 + 8 + 8 + 4 = 22 bytes; bundles go in one segment). Acknowledgements in
the reverse direction are small and are not counted against it.
"""

from __future__ import annotations

from hilnet.bundle.bpsec.policy import Protection, overhead_bytes
from hilnet.bundle.eid import parse_eid
from hilnet.scenario.model import DirectionParams, Scenario, Traffic

SERIAL_FRAME_PAYLOAD = 1024  # the serial CLA's default segment_size
SERIAL_FRAME_HEADER = 19 + 4  # DATA frame header + CRC-32C (docs/cla.md, serial_frame.py)
SERIAL_FRAME_DELIMITERS = 2  # SLIP END before and after
SERIAL_ESCAPE_EXPANSION = 2 / 256  # share of payload bytes that are END or ESC and take two bytes

ETH_MTU = 1500
ETH_WIRE_EXTRA = 14 + 8 + 12 + 4  # MAC header, preamble+SFD, inter-frame gap, FCS
TCP_MSS = ETH_MTU - 20 - 32  # IPv4 header, TCP header with the timestamp option

# As the agent makes bundles: primary block with ipn EIDs (report-to = source),
# hop count block, class-of-service block (type 193, on every bundle an agent
# makes, as ION does), payload block header, CRC-32Cs. A 1,024-byte payload is
# a 1,111-byte bundle (docs/scenario.md; tests/docs checks it against an agent);
# CBOR lengths move it by a byte or two (a payload of 64 KiB or more: +2).
BUNDLE_OVERHEAD = 87
# An upper bound on a bundle's bytes besides its payload at any hop, for the size limit:
# a relay adds a previous-node block (107 bytes in all with ipn EIDs), dtn:// names
# add their length; 1 KiB leaves room for both.
MAX_BLOCKS_BYTES = 1024
TCPCL_SEGMENT_HEADER = 22  # XFER_SEGMENT with the transfer-length extension item


def efficiency(medium: str) -> float:
    """Share of the medium's raw byte rate left for convergence-layer data (0..1)."""
    if medium == "serial":
        per_frame = SERIAL_FRAME_PAYLOAD * (1 + SERIAL_ESCAPE_EXPANSION) + SERIAL_FRAME_HEADER + SERIAL_FRAME_DELIMITERS
        return SERIAL_FRAME_PAYLOAD / per_frame
    return TCP_MSS / (ETH_MTU + ETH_WIRE_EXTRA)


def goodput_bytes_per_s(medium: str, params: DirectionParams) -> float:
    """Wall-clock bytes/s of bundle data a direction carries (rate and baud are physics, unscaled)."""
    return params.wire_bytes_per_s * efficiency(medium)


def bundle_bytes(medium: str, payload: int) -> int:
    """Bytes a bundle of ``payload`` bytes puts through the convergence layer, before framing."""
    extra = BUNDLE_OVERHEAD + (TCPCL_SEGMENT_HEADER if medium == "ethernet" else 0)
    return payload + extra


def security_bytes(scenario: Scenario, traffic: Traffic) -> int:
    """Bytes the BIB and BCB a stream asks for add to each of its bundles (docs/scenario.md "Security")."""
    protection = Protection.named(traffic.integrity, traffic.confidentiality)
    return overhead_bytes(protection, parse_eid(scenario.node(traffic.frm).eid)) if protection else 0
