"""TCPCLv4 session security decisions (RFC 9174 sections 4.2-4.4), without I/O.

What a :class:`~hilnet.agent.cla.tcpcl_session.TcpclSession` decides about TLS,
as plain functions: the Contact Header flag a policy sets, whether the
negotiated Enable TLS is acceptable, and whether a certificate's node ids
authenticate a node id. The TLS handshake itself is the driver's
(:mod:`hilnet.agent.cla.tcpcl_tls`); it reports the node ids the peer's
certificate carries, already validated up to the lab CA.

Policies (per node, docs/cla.md):

- ``off``: CAN_TLS 0; a peer that requires TLS refuses us (and we say so).
- ``enable``: CAN_TLS 1; TLS when the peer offers it too, plain otherwise.
- ``require``: CAN_TLS 1; a peer that does not offer TLS is refused with
  SESS_TERM "Contact Failure" (RFC 9174 4.3).

With TLS, RFC 9174 4.4.5's recommended policy holds: the peer's node id must
be authenticated by its certificate (4.4.4.3), and network-level identifiers
(DNS names, addresses) are ignored. The active side also checks, before it
sends its own SESS_INIT, that the certificate is for the node it meant to
reach, so a wrong peer learns nothing of us.
"""

from __future__ import annotations

from enum import Enum

from hilnet.agent.cla.tcpcl_messages import ContactFlag
from hilnet.bundle.eid import parse_eid
from hilnet.errors import HilnetError


class TlsPolicy(Enum):
    """A node's TLS policy for TCPCLv4 sessions."""

    OFF = "off"
    ENABLE = "enable"
    REQUIRE = "require"


POLICIES = tuple(p.value for p in TlsPolicy)


def contact_flags(policy: TlsPolicy) -> ContactFlag:
    """The Contact Header flags we send under ``policy``."""
    return ContactFlag.NONE if policy is TlsPolicy.OFF else ContactFlag.CAN_TLS


def negotiate(policy: TlsPolicy, peer_flags: int) -> tuple[bool, str | None]:
    """(Enable TLS, why the session is refused or None) once the peer's Contact Header is in.

    Enable TLS is the AND of both CAN_TLS flags (RFC 9174 4.3).
    """
    enable = bool(contact_flags(policy) & ContactFlag.CAN_TLS) and bool(peer_flags & ContactFlag.CAN_TLS)
    if policy is TlsPolicy.REQUIRE and not enable:
        return False, "peer does not offer TLS (CAN_TLS 0) and our policy requires it"
    return enable, None


def peer_refusal_reason(policy: TlsPolicy, peer_flags: int) -> str | None:
    """Why a peer that sent "Contact Failure" before SESS_INIT most likely did, if TLS explains it."""
    if policy is TlsPolicy.OFF and peer_flags & ContactFlag.CAN_TLS:
        return "peer refused the session (contact failure): it offers TLS, which our policy 'off' does not use"
    return None


def same_node_id(a: str, b: str) -> bool:
    """Whether two node id URIs name the same node (RFC 9174 4.4.1: RFC 3986 comparison, RFC 9171 normalisation)."""
    if a == b:
        return True
    try:
        return parse_eid(a) == parse_eid(b)
    except HilnetError:
        return False  # not an EID we can normalise: only the exact text matched


def authenticates(node_id: str, certified: tuple[str, ...]) -> bool:
    """Whether a certificate carrying the node ids ``certified`` authenticates ``node_id``."""
    return any(same_node_id(node_id, c) for c in certified)


def certified_text(certified: tuple[str, ...]) -> str:
    """The node ids of a certificate, for a message: ``ipn:2.0`` or ``none``."""
    return ", ".join(certified) if certified else "none"
