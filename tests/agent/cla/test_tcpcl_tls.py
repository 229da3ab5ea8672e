"""TCPCLv4 over TLS 1.3 between two real TcpclCla on loopback sockets, with certificates from hilnet's lab PKI."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hilnet.agent import pki
from hilnet.agent.cla.tcpcl import TcpclCla
from hilnet.agent.cla.tcpcl_security import TlsPolicy
from hilnet.agent.cla.tcpcl_tls import ID_ON_BUNDLE_EID, node_ids_of
from hilnet.errors import ClaError
from tests.agent.cla.test_tcpcl_cla import Sink, run_async, until

OFF, ENABLE, REQUIRE = TlsPolicy.OFF, TlsPolicy.ENABLE, TlsPolicy.REQUIRE


class TlsSink(Sink):
    def __init__(self):
        super().__init__()
        self.tls: list[dict] = []

    def tls_failed(self, cla, reason, peer, certified, address) -> None:
        self.tls.append({"reason": reason, "peer": peer, "certified": certified, "address": address})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("pki"))
    pki.init_ca(folder)
    files = {n: pki.issue(folder, n, eid) for n, eid in (("a", "ipn:1.0"), ("b", "ipn:2.0"), ("c", "ipn:3.0"))}
    other = str(tmp_path_factory.mktemp("other-pki"))
    pki.init_ca(other, name="somebody else's CA")
    files["stranger"] = pki.issue(other, "stranger", "ipn:2.0")
    return files


def cla(eid, policy, files, **kw) -> TcpclCla:
    return TcpclCla(eid, tls=policy, tls_files=files, keepalive_s=5, reconnect_max_s=0.5, **kw)


async def start_pair(lab, pa, pb, a_files="a", b_files="b", b_eid="ipn:2.0"):
    """A listens as ipn:1.0; B (node b_eid) dials A. Returns (a, sink_a, b, sink_b)."""
    a = cla("ipn:1.0", pa, lab[a_files] if pa is not OFF else None, listen=("127.0.0.1", 0))
    sa = TlsSink()
    await a.start(sa)
    b = cla(b_eid, pb, lab[b_files] if pb is not OFF else None, listen=None, peers={"ipn:1.0": a.address})
    sb = TlsSink()
    await b.start(sb)
    return a, sa, b, sb


async def stop(*clas):
    for c in clas:
        await c.stop()


def test_issued_certificate_names_the_node_id_both_ways(lab):
    with open(lab["b"].cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["ipn:2.0"]
    assert [o.type_id for o in san.get_values_for_type(x509.OtherName)] == [ID_ON_BUNDLE_EID]
    assert node_ids_of(cert.public_bytes(serialization.Encoding.DER)) == ("ipn:2.0",)
    assert os.stat(lab["b"].key).st_mode & 0o777 == 0o600


@run_async
async def test_require_on_both_sides_carries_bundles_inside_tls(lab):
    a, sa, b, sb = await start_pair(lab, REQUIRE, REQUIRE)
    try:
        await until(lambda: b.peers_up() == {"ipn:1.0"} and a.peers_up() == {"ipn:2.0"}, what="session up")
        await b.send("ipn:1.0", b"inside tls")
        assert sa.bundles == [("ipn:2.0", b"inside tls")]
        up = [d for _, is_up, d in sb.changes if is_up]
        assert up and up[0]["tls"] is True
        assert not sa.tls and not sb.tls
    finally:
        await stop(b, a)


@run_async
async def test_enable_against_off_falls_back_to_plain(lab):
    a, sa, b, sb = await start_pair(lab, OFF, ENABLE)
    try:
        await until(lambda: b.peers_up() == {"ipn:1.0"}, what="session up")
        await b.send("ipn:1.0", b"plain")
        up = [d for _, is_up, d in sb.changes if is_up]
        assert up[0]["tls"] is False and not sb.tls
    finally:
        await stop(b, a)


@run_async
async def test_plain_peer_against_require_is_refused_with_a_reason_on_both_sides(lab):
    a, sa, b, sb = await start_pair(lab, REQUIRE, OFF)
    try:
        await until(lambda: sa.tls and sb.tls, what="tls-failed on both sides")
        assert "does not offer TLS" in sa.tls[0]["reason"] and "requires" in sa.tls[0]["reason"]
        assert "offers TLS" in sb.tls[0]["reason"]
        assert not a.peers_up() and not b.peers_up()
        with pytest.raises(ClaError):
            await b.send("ipn:1.0", b"never")
    finally:
        await stop(b, a)


@run_async
async def test_certificate_for_another_node_is_refused_naming_both_ids(lab):
    # B says it is ipn:2.0 (SESS_INIT) but holds c's certificate, for ipn:3.0.
    a, sa, b, sb = await start_pair(lab, REQUIRE, REQUIRE, b_files="c", b_eid="ipn:2.0")
    try:
        await until(lambda: sa.tls, what="tls-failed at the listener")
        ev = sa.tls[0]
        assert ev["peer"] == "ipn:2.0" and ev["certified"] == "ipn:3.0"
        assert "ipn:2.0" in ev["reason"] and "ipn:3.0" in ev["reason"]
        assert not sa.bundles and not a.peers_up()
    finally:
        await stop(b, a)


@run_async
async def test_dialling_side_refuses_a_listener_certified_for_another_node(lab):
    # A listens with c's certificate (ipn:3.0); B dials it believing it reaches ipn:1.0.
    a, sa, b, sb = await start_pair(lab, REQUIRE, REQUIRE, a_files="c")
    try:
        await until(lambda: sb.tls, what="tls-failed at the dialler")
        ev = sb.tls[0]
        assert ev["peer"] == "ipn:1.0" and ev["certified"] == "ipn:3.0"
        assert not b.peers_up()
    finally:
        await stop(b, a)


@run_async
async def test_certificate_from_another_ca_fails_the_handshake(lab):
    a, sa, b, sb = await start_pair(lab, REQUIRE, REQUIRE, b_files="stranger")
    try:
        await until(lambda: sa.tls and sb.tls, what="tls-failed on both sides")
        reasons = [sa.tls[0]["reason"], sb.tls[0]["reason"]]
        assert all("TLS handshake failed" in r for r in reasons)
        assert any("peer certificate rejected" in r for r in reasons), reasons
        assert not a.peers_up()
    finally:
        await stop(b, a)


def test_tls_policy_without_files_is_refused():
    with pytest.raises(ClaError, match="needs a certificate"):
        TcpclCla("ipn:1.0", tls=REQUIRE, tls_files=None)


@run_async
async def test_failures_repeat_as_events_not_silently(lab):
    a, sa, b, sb = await start_pair(lab, REQUIRE, OFF)
    try:
        await until(lambda: len(sb.tls) >= 2, what="a second refusal")  # each reconnect says why
        assert b.stats["tls_failed"] >= 2
    finally:
        await stop(b, a)
    await asyncio.sleep(0)


@run_async
async def test_a_peer_that_offers_tls_but_speaks_garbage_fails_the_handshake_with_a_reason(lab):
    a = cla("ipn:1.0", REQUIRE, lab["a"], listen=("127.0.0.1", 0), handshake_timeout_s=2.0)
    sa = TlsSink()
    await a.start(sa)
    try:
        r, w = await asyncio.open_connection(*a.address)
        w.write(b"dtn!\x04\x01")
        assert await r.readexactly(6) == b"dtn!\x04\x01"
        w.write(b"GET / HTTP/1.1\r\n\r\n" * 4)  # not a TLS ClientHello
        await w.drain()
        await until(lambda: sa.tls, what="tls-failed")
        assert "TLS handshake failed" in sa.tls[0]["reason"]
        w.close()
    finally:
        await stop(a)


@run_async
async def test_a_peer_that_goes_quiet_after_offering_tls_times_out_with_a_reason(lab):
    a = cla("ipn:1.0", REQUIRE, lab["a"], listen=("127.0.0.1", 0), handshake_timeout_s=0.5)
    sa = TlsSink()
    await a.start(sa)
    try:
        r, w = await asyncio.open_connection(*a.address)
        w.write(b"dtn!\x04\x01")
        assert await r.readexactly(6) == b"dtn!\x04\x01"
        await until(lambda: sa.tls, timeout=5, what="tls-failed")
        assert sa.tls[0]["reason"] == "no TLS handshake in time"
        w.close()
    finally:
        await stop(a)


@run_async
async def test_a_peer_that_speaks_only_tls_12_is_refused(lab):
    a = cla("ipn:1.0", REQUIRE, lab["a"], listen=("127.0.0.1", 0))
    sa = TlsSink()
    await a.start(sa)
    try:
        r, w = await asyncio.open_connection(*a.address)
        w.write(b"dtn!\x04\x01")
        assert await r.readexactly(6) == b"dtn!\x04\x01"
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        old.check_hostname = False
        old.load_cert_chain(lab["b"].cert, lab["b"].key)
        old.load_verify_locations(lab["b"].ca)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await w.start_tls(old)
        await until(lambda: sa.tls, what="tls-failed")
        assert sa.tls[0]["reason"] == "TLS handshake failed: unsupported protocol"
        w.close()
    finally:
        await stop(a)
