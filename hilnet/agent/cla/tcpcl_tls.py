"""The TLS side of the TCPCLv4 driver: contexts, the upgrade, and the node ids a certificate carries.

The session machine (:mod:`~hilnet.agent.cla.tcpcl_handshake`) decides when
TLS starts and whether its outcome authenticates the peer; this module does
what needs the ``ssl`` library.

Why ``StreamWriter.start_tls`` on the asyncio transport, and not an
``ssl.SSLObject`` over ``MemoryBIO`` driven by hand: the session machine only
ever sees plaintext either way, so it stays pure with both; start_tls reuses
asyncio's own SSL protocol (itself a MemoryBIO/SSLObject pair, with its flow
control, close_notify on close and handshake timeout) and leaves the driver's
read and write loops unchanged, where a hand-driven SSLObject would add a
second buffer layer and its own want-read/want-write loop to the driver.
The one thing to get right is order: the passive side's Contact Header is
written, and the transport stops reading, before any TLS octet can arrive:
:func:`handshake` is called with no ``await`` between the read that brought
the peer's Contact Header and the switch (``start_tls`` pauses reading before
it first yields), and the peer sends its first TLS octet only after it read ours.

Profile (RFC 9174 4.4.3-4.4.5): TLS 1.3 or later only; both sides present a
certificate (the passive side requests the client's); the chain must lead to
the lab CA; DNS names and addresses are not checked (network-level identities
are ignored, as 4.4.5 recommends); the node id is authenticated against the
certificate's subjectAltName: an otherName of form BundleEID (id-on-bundleEID,
1.3.6.1.5.5.7.8.11) or a URI, whichever the CA wrote (``hilnet pki`` writes both).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from cryptography import x509

from hilnet.agent.cla.tcpcl_events import Event, StartTls
from hilnet.agent.cla.tcpcl_session import TcpclSession
from hilnet.bundle.eid import parse_eid
from hilnet.clock import Clock
from hilnet.errors import ClaError, HilnetError

ID_ON_BUNDLE_EID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.11")
ID_KP_BUNDLE_SECURITY = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.35")
_OLDER = frozenset(("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"))


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a node: its certificate, its private key, and the CA that signs its peers'."""

    cert: str
    key: str
    ca: str


class TlsContexts:
    """One client and one server context for a node, TLS 1.3 minimum, both asking for a certificate."""

    def __init__(self, files: TlsFiles):
        self.client = _context(ssl.PROTOCOL_TLS_CLIENT, files)
        self.server = _context(ssl.PROTOCOL_TLS_SERVER, files)


def _context(protocol: int, files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # RFC 9174 4.4.5: the node id is authenticated, not the network name
    ctx.verify_mode = ssl.CERT_REQUIRED  # on the server side: request and require the client's certificate
    try:
        ctx.load_cert_chain(files.cert, files.key)
        ctx.load_verify_locations(cafile=files.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ClaError(
            f"tcpcl TLS: cannot load certificate {files.cert}, key {files.key} or CA {files.ca}: {exc}; "
            "expected PEM files as `hilnet pki issue` writes them"
        ) from exc
    return ctx


async def handshake(
    session: TcpclSession, writer: asyncio.StreamWriter, contexts: TlsContexts | None, ev: StartTls, clock: Clock
) -> list[Event]:
    """Do what the session's StartTls asks on ``writer``; returns the session's events about the outcome."""
    for chunk in session.data_to_send(clock.now_ns()):  # the passive side's Contact Header, in the clear
        writer.write(chunk)
    if contexts is None:  # a policy other than off always comes with files (TcpclCla checks)
        return session.tls_failed("no certificate configured", clock.now_ns())
    # The session's handshake timer decides (it runs on the injected clock); asyncio's is a backstop.
    timeout_s = 2 * session.config.handshake_timeout_ns / 1e9
    try:
        certified = await upgrade(writer, contexts, ev.server_side, timeout_s)
    except ClaError as exc:
        return session.tls_failed(str(exc), clock.now_ns())
    return session.tls_established(certified, clock.now_ns())


async def upgrade(
    writer: asyncio.StreamWriter, contexts: TlsContexts, server_side: bool, timeout_s: float
) -> tuple[str, ...]:
    """Run the TLS handshake on ``writer``'s connection; returns the node ids of the peer's certificate.

    Raises :class:`~hilnet.errors.ClaError` whose message is the reason when the handshake fails.
    """
    ctx = contexts.server if server_side else contexts.client
    try:
        await writer.start_tls(ctx, ssl_handshake_timeout=timeout_s)
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        raise ClaError(failure_reason(exc)) from exc
    obj = writer.get_extra_info("ssl_object")
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    if obj is not None and obj.version() in _OLDER:  # minimum_version holds this; say so if it ever did not
        raise ClaError(f"negotiated {obj.version()}, older than TLS 1.3")
    return node_ids_of(der) if der else ()


def failure_reason(exc: BaseException) -> str:
    """A short reason for a failed TLS handshake or a TLS alert from the peer."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"peer certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or str(exc)).lower().replace("_", " ")
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def node_ids_of(der: bytes) -> tuple[str, ...]:
    """The node ids a DER certificate's subjectAltName names (RFC 9174 4.4.1); () when none.

    Entries that are not node ids (an endpoint with a service, a web URI) are
    ignored, as 4.4.1 asks; version 1 and 2 certificates carry none (4.4.2).
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        if cert.version is not x509.Version.v3:
            return ()
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ()
    found: list[str] = []
    for name in san:
        text: str | None = None
        if isinstance(name, x509.UniformResourceIdentifier):
            text = name.value
        elif isinstance(name, x509.OtherName) and name.type_id == ID_ON_BUNDLE_EID:
            text = _ia5(name.value)
        if text is not None and _is_node_id(text) and text not in found:
            found.append(text)
    return tuple(found)


def _ia5(der: bytes) -> str | None:
    """The text of a DER IA5String (tag 22), or None."""
    if len(der) < 2 or der[0] != 0x16:
        return None
    n, pos = der[1], 2
    if n & 0x80:
        k = n & 0x7F
        n, pos = int.from_bytes(der[2 : 2 + k], "big"), 2 + k
    body = der[pos : pos + n]
    if len(body) != n:
        return None
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        return None


def _is_node_id(text: str) -> bool:
    try:
        eid = parse_eid(text)
    except HilnetError:
        return False
    return eid.node_id == eid and not eid.is_null


def ia5_der(text: str) -> bytes:
    """``text`` as a DER IA5String: the value of a BundleEID otherName."""
    body = text.encode("ascii")
    n = len(body)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return b"\x16" + length + body
