"""Captures: one pcap per link end that Wireshark (tshark) opens and decodes.

The TCPCLv4 test relays a hand-built TCPCLv4 session (RFC 9174 contact
header, SESS_INIT, one XFER_SEGMENT carrying a BPv7 bundle made by pyd3tn, an
independent implementation) to a server on port 4556 and checks that tshark
decodes TCPCL and the bundle in both pcaps. Skipped when tshark is missing.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time

import pytest
from link_endpoint_harness import PtyHarness, UdpHarness, free_port

from hilnet.link.engine import Engine

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (apt-get install -y tshark)")


def tshark(path, *args: str) -> str:
    r = subprocess.run([TSHARK, "-r", str(path), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _run_link(tmp_path, a, b, body):
    engine = Engine()
    link = engine.add_link("cap", a, b, capture_dir=str(tmp_path / "pcap"))
    engine.start()
    try:
        body()
        time.sleep(0.1)
    finally:
        engine.stop()
        engine.join(5)
    return link


def test_pcap_files_per_end_with_serial_direction_byte(tmp_path):
    h = PtyHarness(tmp_path)
    try:

        def body():
            h.connect()
            h.send("a", b"ping")
            assert h.recv("b", 4, 2) == b"ping"
            h.send("b", b"pong!")
            assert h.recv("a", 5, 2) == b"pong!"

        _run_link(tmp_path, *h.specs(), body)
    finally:
        h.close()
    from scapy.utils import RawPcapReader

    def records(path):
        reader = RawPcapReader(str(path))
        assert reader.linktype == 147
        return [bytes(pkt) for pkt, _ in reader]

    assert records(tmp_path / "pcap" / "cap.a.pcap") == [b"\x00ping", b"\x01pong!"]
    assert records(tmp_path / "pcap" / "cap.b.pcap") == [b"\x01ping", b"\x00pong!"]


@needs_tshark
def test_udp_capture_opens_in_tshark(tmp_path):
    h = UdpHarness()
    port_b = h.socks["b"].getsockname()[1]
    try:

        def body():
            h.send("a", b"datagram-1")
            assert h.recv("b", 10, 2) == b"datagram-1"

        _run_link(tmp_path, *h.specs(), body)
    finally:
        h.close()
    out = tshark(tmp_path / "pcap" / "cap.b.pcap", "-T", "fields", "-e", "udp.dstport", "-e", "data.data")
    assert out.split() == [str(port_b), b"datagram-1".hex()]


def _tcpcl_session(bundle: bytes) -> bytes:
    """An RFC 9174 TCPCLv4 session start and one transfer, as an active entity sends it."""
    contact = b"dtn!" + bytes([4, 0])
    node = b"ipn:1.0"
    sess_init = struct.pack("!BHQQH", 0x07, 30, 1 << 20, 1 << 24, len(node)) + node + struct.pack("!I", 0)
    xfer = struct.pack("!BBQ", 0x01, 0x03, 1) + struct.pack("!I", 0) + struct.pack("!Q", len(bundle)) + bundle
    return contact + sess_init + xfer


@needs_tshark
def test_tcp_relay_capture_decodes_tcpclv4_and_bundle(tmp_path):
    from pyd3tn.bundle7 import serialize_bundle7

    try:
        server = socket.create_server(("127.0.0.2", 4556))
    except OSError as e:
        pytest.skip(f"port 4556 on 127.0.0.2 not free: {e}")
    bundle = serialize_bundle7("ipn:1.0", "ipn:4.0", b"photo from the ISS")
    session = _tcpcl_session(bundle)
    a_port = free_port(socket.SOCK_STREAM)
    a = f"tcp://127.0.0.1:{a_port}?peer=127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    b = f"tcp://127.0.0.1:{free_port(socket.SOCK_STREAM)}?peer=127.0.0.2:4556"
    got = bytearray()

    def body():
        c = socket.create_connection(("127.0.0.1", a_port))
        c.sendall(session)
        server.settimeout(3)
        s, _ = server.accept()
        s.settimeout(3)
        while len(got) < len(session):
            got.extend(s.recv(65536))
        s.sendall(b"dtn!" + bytes([4, 0]))  # the passive entity's contact header
        assert c.recv(6) == b"dtn!\x04\x00"
        c.close()
        assert s.recv(10) == b""  # the pair closes
        s.close()

    try:
        _run_link(tmp_path, a, b, body)
    finally:
        server.close()
    assert bytes(got) == session
    for end in "ab":
        path = tmp_path / "pcap" / f"cap.{end}.pcap"
        protos = tshark(path, "-d", f"tcp.port=={a_port},tcpcl", "-T", "fields", "-e", "frame.protocols")
        assert "tcpcl" in protos, f"{end}: {protos}"
        assert "bpv7" in protos, f"{end}: no bundle decoded: {protos}"
        payload = tshark(
            path, "-d", f"tcp.port=={a_port},tcpcl", "-Y", "bpv7", "-T", "fields", "-e", "bpv7.primary.dst_uri"
        )
        assert "ipn:4.0" in payload, payload
