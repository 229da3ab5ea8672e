"""Interop: a bundle made and sent by pyd3tn (µD3TN's Python tools) crosses two hilnet agents.

pyd3tn.bpv7 serialises the bundle with its own CBOR and CRC code and
pyd3tn.mtcp sends it into agent A's MTCP listener; A forwards it over TCPCLv4
to agent B, which delivers it. Nothing of hilnet's bundle codec touches the
bytes before A decodes them, so a mismatch in either implementation shows.
"""

from __future__ import annotations

import hashlib
import socket

import pytest
from agent_procs import Procs, free_port

pyd3tn_bundle7 = pytest.importorskip("pyd3tn.bundle7")
pyd3tn_mtcp = pytest.importorskip("pyd3tn.mtcp")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


@pytest.mark.parametrize("crc,clockless", [("CRC16", False), ("CRC32", False), ("CRC32", True)])
def test_pyd3tn_bundle_over_mtcp_then_tcpcl_is_delivered_intact(procs, crc, clockless):
    """``clockless``: creation time 0 and a Bundle Age block, as a node without a clock sends (RFC 9171 4.2.7)."""
    mtcp_a, tcpcl_a, tcpcl_b = free_port(), free_port(), free_port()
    procs.start("a")
    procs.start("b")
    procs.configure("b", "ipn:2.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{tcpcl_b}"}])
    procs.configure(
        "a",
        "ipn:1.0",
        [
            {"type": "mtcp", "listen": f"127.0.0.1:{mtcp_a}"},
            {"type": "tcpcl", "listen": f"127.0.0.1:{tcpcl_a}", "peers": {"ipn:2.0": f"127.0.0.1:{tcpcl_b}"}},
        ],
        routes={"ipn:2.0": "ipn:2.0"},
    )
    procs.wait(lambda: procs.of("a", "session-up"), 10, "tcpcl session a-b")

    payload = bytes(range(256)) * 200 + b"from pyd3tn"
    crc_type = getattr(pyd3tn_bundle7.CRCType, crc)
    bundle = pyd3tn_bundle7.serialize_bundle7(
        "ipn:9.1",
        "ipn:2.0",
        payload,
        lifetime=600,
        hop_limit=16,
        crc_type_primary=crc_type,
        crc_type_canonical=crc_type,
        **({"creation_timestamp": 0, "sequence_number": 7, "bundle_age": 0} if clockless else {}),
    )
    sock = socket.create_connection(("127.0.0.1", mtcp_a), timeout=5)
    with pyd3tn_mtcp.MTCPSocket(sock) as conn:
        conn.send_bundle(bundle)

    procs.wait(lambda: procs.of("b", "delivered"), 15, "delivery at b")
    (d,) = procs.of("b", "delivered")
    assert d["sha256"] == hashlib.sha256(payload).hexdigest()
    assert d["source"] == "ipn:9.1" and d["size"] == len(payload)
    assert [e["cla"] for e in procs.of("a", "received")] == ["mtcp"]
    # a logs acked once its delete is durable, which may come just after b's delivery
    procs.wait(lambda: procs.of("a", "acked"), 10, "the ack at a")
    assert [e["by"] for e in procs.of("a", "acked")] == ["ipn:2.0"]
    assert procs.status("a")["stored"] == 0 and procs.status("b")["stored"] == 0
