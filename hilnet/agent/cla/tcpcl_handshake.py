"""How a TCPCLv4 session comes up: Contact Headers, TLS, SESS_INIT (RFC 9174 sections 4.2-4.7).

The handshake half of :class:`~hilnet.agent.cla.tcpcl_session.TcpclSession`,
kept in its own module because it is its own concept: everything before
SessionUp. Sans-I/O like the rest; the security decisions are
:mod:`~hilnet.agent.cla.tcpcl_security`'s.

Order on the wire: Contact Headers in the clear; if both set CAN_TLS, the
session emits :class:`StartTls` and waits in state TLS while the driver runs
the TLS 1.3 handshake (the active side as client); the driver reports the
outcome with :meth:`Handshake.tls_established` (the node ids the validated
certificate carries) or :meth:`Handshake.tls_failed`. Then SESS_INIT, inside
TLS when TLS is on. Every failed or refused TLS negotiation is a
:class:`TlsFailed` event with its reason, before the SessionEnded.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from hilnet.agent.cla.tcpcl_events import (
    Event,
    Outbox,
    SessionConfig,
    SessionParams,
    SessionUp,
    StartTls,
    TlsFailed,
)
from hilnet.agent.cla.tcpcl_messages import VERSION, ContactHeader, SessInit, TermReason, valid_node_id
from hilnet.agent.cla.tcpcl_security import (
    authenticates,
    certified_text,
    contact_flags,
    negotiate,
    peer_refusal_reason,
)
from hilnet.agent.cla.tcpcl_wire import encode_contact_header, encode_sess_init, encode_sess_term

if TYPE_CHECKING:
    from hilnet.agent.cla.tcpcl_liveness import Liveness


class State(Enum):
    CONTACT = "contact"  # waiting for the peer's Contact Header
    TLS = "tls"  # both offered TLS: the driver runs the TLS handshake
    SESS_INIT = "sess_init"  # waiting for the peer's SESS_INIT
    ESTABLISHED = "established"
    ENDING = "ending"  # a SESS_TERM went out: no new transfers
    CLOSED = "closed"


class Handshake:
    """The session's handshake steps; mixed into TcpclSession, which owns the state below."""

    config: SessionConfig
    active: bool
    expected_peer: str | None
    state: State
    params: SessionParams | None
    _out: Outbox
    _sent_ch: bool
    _sent_init: bool
    _sent_term: bool
    _timers: Liveness
    _tls: bool  # the session runs inside TLS
    _certified: tuple[str, ...]  # node ids of the peer's validated certificate
    _peer_flags: int  # the peer's Contact Header flags

    def _send_ctl(self, msg: bytes) -> None:
        raise NotImplementedError

    def _end(self, reason: str, clean: bool) -> None:
        raise NotImplementedError

    def _fail(self, reason: str, detail: str, term: TermReason | None) -> None:
        raise NotImplementedError

    # --- for the driver ---------------------------------------------------------

    def tls_established(self, certified: tuple[str, ...], now_ns: int) -> list[Event]:
        """The TLS handshake succeeded; ``certified`` are the node ids of the peer's certificate.

        The certificate chained to our CA (the driver's TLS context checked it).
        """
        if self.state is not State.TLS:
            return self._out.take_events()
        self._tls, self._certified = True, certified
        self.state = State.SESS_INIT
        if self.active:
            exp = self.expected_peer
            if exp and not authenticates(exp, certified):
                self._refuse_tls(
                    f"certificate is for {certified_text(certified)}, not for {exp}, the node we meant to reach", exp
                )
                return self._out.take_events()
            self._send_init()
        return self._out.take_events()

    def tls_failed(self, reason: str, now_ns: int) -> list[Event]:
        """The TLS handshake failed (``reason`` as the TLS library says): close, no SESS_TERM (RFC 9174 4.4.3).

        Also after tls_established() until SESS_INIT: in TLS 1.3 the client learns
        only on its first read that the server refused its certificate.
        """
        if self.state is State.TLS or (self._tls and self.state is State.SESS_INIT):
            self._out.events.append(TlsFailed(f"TLS handshake failed: {reason}", self.expected_peer))
            self._end(f"TLS handshake failed: {reason}", clean=False)
        return self._out.take_events()

    # --- steps -------------------------------------------------------------------

    def _on_contact_header(self, ch: ContactHeader) -> bool:
        """Act on the peer's Contact Header; True when TLS starts next."""
        self._peer_flags = ch.flags
        if not self.active:
            self._send_ctl(encode_contact_header(contact_flags(self.config.tls)))
            self._sent_ch = True
        if ch.version != VERSION:
            self._out.violation("version_mismatch", f"peer speaks TCPCL version {ch.version}")
            if not self.active:
                self._send_ctl(encode_sess_term(TermReason.VERSION_MISMATCH))
            self._end(f"peer speaks TCPCL version {ch.version}", clean=False)
            return False
        enable_tls, refusal = negotiate(self.config.tls, ch.flags)
        if refusal is not None:  # RFC 9174 4.3: an unacceptable Enable TLS is a Contact Failure
            self._refuse_tls(refusal, self.expected_peer)
            return False
        if enable_tls:
            self.state = State.TLS
            self._out.events.append(StartTls(server_side=not self.active))
            return True
        self.state = State.SESS_INIT
        if self.active:
            self._send_init()
        return False

    def _send_init(self) -> None:
        c = self.config
        self._send_ctl(encode_sess_init(SessInit(c.keepalive_s, c.segment_mru, c.transfer_mru, c.node_id)))
        self._sent_init = True

    def _on_sess_init(self, msg: SessInit, now_ns: int) -> None:
        for item in msg.extensions:
            if item.critical:  # no session extension is known to us
                self._fail(
                    "session_ext_critical", f"critical session extension type {item.type}", TermReason.CONTACT_FAILURE
                )
                return
        if msg.node_id and not valid_node_id(msg.node_id):
            self._fail("node_id_invalid", f"node id {msg.node_id!r} is not a URI", TermReason.CONTACT_FAILURE)
            return
        if self._tls and not authenticates(msg.node_id, self._certified):
            # RFC 9174 4.4.4.3: the certificate must authenticate the node id of SESS_INIT.
            self._refuse_tls(
                f"peer claims node id {msg.node_id or '(none)'} but its certificate is for "
                f"{certified_text(self._certified)}",
                msg.node_id,
            )
            return
        if not self.active:
            self._send_init()
        if self.expected_peer and msg.node_id and msg.node_id != self.expected_peer:
            # RFC 9174 4.6: allowed, and the session belongs to the id the peer gave.
            self._out.violation("node_id_unexpected", f"expected {self.expected_peer}, peer says {msg.node_id}")
        self.params = SessionParams(
            peer_node_id=msg.node_id,
            keepalive_s=min(self.config.keepalive_s, msg.keepalive_s),
            peer_segment_mru=msg.segment_mru,
            peer_transfer_mru=msg.transfer_mru,
            tls=self._tls,
        )
        self.state = State.ESTABLISHED
        self._timers.established(self.params.keepalive_s, now_ns)
        self._out.events.append(SessionUp(msg.node_id, self.params))

    def _peer_refused_early(self) -> str | None:
        """A SESS_TERM before SESS_INIT: the TLS reason for it, when our policy explains it."""
        reason = peer_refusal_reason(self.config.tls, self._peer_flags)
        if reason is not None:
            self._out.events.append(TlsFailed(reason, self.expected_peer))
        return reason

    def _refuse_tls(self, reason: str, claimed: str | None) -> None:
        """Refuse the session for a TLS reason: TlsFailed, SESS_TERM "Contact Failure", end."""
        self._out.events.append(TlsFailed(reason, claimed, self._certified))
        if self._sent_ch and not self._sent_term:
            self._send_ctl(encode_sess_term(TermReason.CONTACT_FAILURE))
            self._sent_term = True
        self._end(f"TLS: {reason}", clean=False)
