"""A lab PKI for TCPCLv4 over TLS: one CA, one certificate per node (``hilnet pki``, docs/cla.md).

:func:`init_ca` makes the CA (an EC P-256 key and a self-signed certificate);
:func:`issue` makes a node's key and a certificate the CA signs, carrying the
node id both as an otherName of form BundleEID (RFC 9174 4.4.2.1, what the RFC
names NODE-ID) and as a URI subjectAltName (what common tools show, e.g.
``URI:ipn:4.0``). Both are what :func:`hilnet.agent.cla.tcpcl_tls.node_ids_of`
reads back. The profile follows RFC 9174 4.4.2: version 3, key identifiers,
key usage digitalSignature, EKU serverAuth + clientAuth + bundleSecurity.

Private keys are written 0600 (created so, never widened); nothing is
overwritten unless asked. Layout of a PKI folder::

    ca.crt  ca.key  NAME.crt  NAME.key ...
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hilnet.agent.cla.tcpcl_tls import ID_KP_BUNDLE_SECURITY, ID_ON_BUNDLE_EID, TlsFiles, ia5_der
from hilnet.bundle.eid import parse_eid
from hilnet.clock import realtime_ns
from hilnet.errors import InputError

CA_CERT, CA_KEY = "ca.crt", "ca.key"
CA_DAYS = 3650
NODE_DAYS = 825


@dataclass(frozen=True, slots=True)
class Ca:
    """A CA's certificate and key files."""

    cert: str
    key: str


def init_ca(folder: str, name: str = "hilnet lab CA", days: int = CA_DAYS, force: bool = False) -> Ca:
    """Make a CA in ``folder`` (created 0700 if missing): ``ca.key`` (0600) and ``ca.crt``, valid ``days``."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    ca = Ca(os.path.join(folder, CA_CERT), os.path.join(folder, CA_KEY))
    _refuse_overwrite((ca.cert, ca.key), force, "a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # board clocks drift before chrony syncs
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(ca.key, key)
    _write(ca.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca


def issue(folder: str, name: str, node_id: str, days: int = NODE_DAYS, force: bool = False) -> TlsFiles:
    """Make node ``name``'s key (0600) and certificate for ``node_id``, signed by the CA in ``folder``.

    Returns the node's certificate, key and the CA certificate paths.
    """
    _check_node_id(node_id)
    ca_cert, ca_key = _load_ca(folder)
    base = os.path.join(folder, file_stem(name))
    files = TlsFiles(base + ".crt", base + ".key", os.path.join(folder, CA_CERT))
    _refuse_overwrite((files.cert, files.key), force, f"a certificate for {name}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = x509.SubjectAlternativeName(
        [x509.OtherName(ID_ON_BUNDLE_EID, ia5_der(node_id)), x509.UniformResourceIdentifier(node_id)]
    )
    eku = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, ID_KP_BUNDLE_SECURITY]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(eku, critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.key, key)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def provision(folder: str, nodes: Mapping[str, str]) -> dict[str, TlsFiles]:
    """A fresh CA in ``folder`` and a certificate for each node (name -> node id); for a run's testbed."""
    init_ca(folder, name="hilnet run CA", force=True)
    return {name: issue(folder, name, eid, force=True) for name, eid in nodes.items()}


def file_stem(name: str) -> str:
    """The file name stem for node ``name`` (a scenario name, or an EID such as ``ipn:4.0`` -> ``ipn-4.0``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "node"


# --- internals ---------------------------------------------------------------------


def _now() -> datetime.datetime:
    # The certificate validity is wall time: the one reader of the system clock says it.
    return datetime.datetime.fromtimestamp(realtime_ns() / 1e9, datetime.UTC)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_node_id(node_id: str) -> None:
    try:
        eid = parse_eid(node_id)
    except InputError as exc:
        raise InputError(f"{exc}; a node certificate names a node id such as ipn:4.0") from None
    if eid.node_id != eid or eid.is_null:
        raise InputError(f"{node_id} is not a node id; expected ipn:N.0 or dtn://node/")


def _load_ca(folder: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = os.path.join(folder, CA_CERT), os.path.join(folder, CA_KEY)
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except FileNotFoundError as exc:
        raise InputError(
            f"no CA in {folder}: {exc.filename} is missing; make one with `hilnet pki init {folder}`"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the CA in {folder}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"{key_path} is not an EC key as `hilnet pki init` writes")
    return cert, key


def _refuse_overwrite(paths: tuple[str, ...], force: bool, what: str) -> None:
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not force:
        raise InputError(f"{existing[0]} exists: {what} is already there; give --force to replace it")


def _write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(path, pem, 0o600)


def _write(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the start: a key is never readable by others, even briefly."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; never widened beyond mode
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
