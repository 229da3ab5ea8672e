"""A live capture of two TcpclCla on loopback decodes in Wireshark's TCPCLv4 dissector.

Needs tshark and dumpcap with capture rights on ``lo``; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
from pyd3tn.bundle7 import serialize_bundle7

from hilnet.agent.cla.tcpcl import TcpclCla

TSHARK = shutil.which("tshark")
DUMPCAP = shutil.which("dumpcap")

pytestmark = pytest.mark.skipif(
    not (TSHARK and DUMPCAP), reason="tshark/dumpcap not installed (apt-get install tshark)"
)


class Sink:
    def __init__(self):
        self.bundles = []

    async def bundle_received(self, data, cla, peer):
        self.bundles.append(data)

    def session_changed(self, cla, peer, up, detail):
        pass

    def tls_failed(self, cla, reason, peer, certified, address):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def session(port: int, big: bytes, small: bytes) -> tuple[list, list]:
    a = TcpclCla("ipn:1.0", listen=("127.0.0.1", port), keepalive_s=1)
    sa = Sink()
    await a.start(sa)
    b = TcpclCla("ipn:2.0", listen=None, peers={"ipn:1.0": ("127.0.0.1", port)}, keepalive_s=1, max_segment=64 * 1024)
    sb = Sink()
    await b.start(sb)
    while "ipn:1.0" not in b.peers_up() or "ipn:2.0" not in a.peers_up():
        await asyncio.sleep(0.01)
    await b.send("ipn:1.0", big)  # segmented, with the Transfer Length extension
    await a.send("ipn:2.0", small)  # one segment the other way
    await asyncio.sleep(1.3)  # idle long enough for KEEPALIVEs
    await b.stop()  # SESS_TERM and its reply
    await a.stop()
    return sa.bundles, sb.bundles


def test_capture_decodes_as_tcpclv4_without_malformed_fields(tmp_path):
    port = free_port()
    pcap = tmp_path / "tcpcl.pcapng"
    cap = subprocess.Popen(
        [DUMPCAP, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        end = time.monotonic() + 10
        while not pcap.exists() or pcap.stat().st_size == 0:  # the file header appears once capturing
            if cap.poll() is not None or time.monotonic() > end:
                pytest.skip(f"dumpcap cannot capture on lo: {cap.stderr.read().decode(errors='replace')[:300]}")
            time.sleep(0.05)
        time.sleep(0.3)
        big = serialize_bundle7("ipn:2.1", "ipn:1.1", os.urandom(200_000))
        small = serialize_bundle7("ipn:1.1", "ipn:2.1", b"hello over TCPCLv4")
        got_a, got_b = asyncio.run(asyncio.wait_for(session(port, big, small), 30))
        assert got_a == [big] and got_b == [small]
        time.sleep(0.5)  # let dumpcap write the last packets
    finally:
        cap.send_signal(signal.SIGINT)
        try:
            cap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
    # -2: two-pass analysis, so the dissector relates each segment to its later acks
    tshark = [TSHARK, "-2", "-r", str(pcap), "-d", f"tcp.port=={port},tcpcl"]
    out = subprocess.run([*tshark, "-T", "json", "-Y", "tcpcl"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    packets = json.loads(out.stdout)
    assert packets, "no TCPCL packets decoded"
    assert "_ws.malformed" not in out.stdout
    assert sum('"bpv7"' in json.dumps(p["_source"]["layers"]) for p in packets) == 2  # both bundles reassembled
    # No error or warning expert info from the TCPCL dissector. (Wireshark's BPv7
    # dissector warns "Unknown type code" on payloads that are not admin records:
    # that is about the test bundles' payload, not the convergence layer.)
    expert = subprocess.run([*tshark, "-q", "-z", "expert,warn"], capture_output=True, text=True, timeout=120).stdout
    rows = [line.split() for line in expert.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert not [r for r in rows if "TCPCL" in r], expert

    fields = subprocess.run(
        [
            *tshark,
            "-Y",
            "tcpcl",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "tcpcl.v4.mhdr.type",
            "-e",
            "tcpcl.v4.sess_init.nodeid_data",
            "-e",
            "tcpcl.v4.chdr.flags.can_tls",
            "-e",
            "tcpcl.v4.xferext.transfer_length.total_len",
            "-e",
            "tcpcl.v4.xfer_ack.ack_len",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    types = {int(t, 0) for line in fields.splitlines() for t in line.split("\t")[0].split(",") if t}
    assert {1, 2, 4, 5, 7} <= types  # XFER_SEGMENT, XFER_ACK, KEEPALIVE, SESS_TERM, SESS_INIT
    assert "ipn:1.0" in fields and "ipn:2.0" in fields
    assert str(len(big)) in fields  # the Transfer Length extension and the final ack length
