"""Values a TCPCLv4 session takes and gives: its configuration, what it negotiated, its events.

Kept apart from :mod:`hilnet.agent.cla.tcpcl_session` so that drivers and
tests can name events without reading the state machine. :class:`Outbox`
collects what the session and its two halves (:mod:`~hilnet.agent.cla.tcpcl_send`,
:mod:`~hilnet.agent.cla.tcpcl_recv`) have to say.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from hilnet.agent.cla.budget import MemoryBudget
from hilnet.agent.cla.tcpcl_messages import RejectReason
from hilnet.agent.cla.tcpcl_security import TlsPolicy
from hilnet.agent.cla.tcpcl_wire import encode_msg_reject

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Our side of a session. Sizes in bytes, times in ns unless named ``_s``."""

    node_id: str
    keepalive_s: int = 10  # offered Keepalive Interval, s (0 disables keepalives)
    segment_mru: int = 4 << 20  # largest segment we accept
    transfer_mru: int = 256 << 20  # largest bundle we accept
    max_segment: int = 1 << 20  # largest segment we send (the peer's MRU caps it too)
    handshake_timeout_ns: int = 10 * NS_PER_S  # Contact Header + SESS_INIT exchange
    term_timeout_ns: int = 5 * NS_PER_S  # wait for the peer's SESS_TERM reply
    max_ext_len: int = 65536  # extension item octets we buffer per message
    remembered_ids: int = 65536  # incoming transfer ids remembered against reuse
    tls: TlsPolicy = TlsPolicy.OFF  # off | enable | require (tcpcl_security)
    partial_timeout_ns: int = 0  # a partial incoming transfer with no segment done for this long ends (0: off)
    transfer_timeout_ns: int = 0  # our transfer with no XFER_ACK progress for this long ends it (0: off)
    budget: MemoryBudget | None = None  # shared by every session of the agent (hilnet.agent.cla.limits)


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What the session negotiated (RFC 9174 section 4.7)."""

    peer_node_id: str  # "" when the peer sent none
    keepalive_s: int  # negotiated: min of both offers; 0 = off
    peer_segment_mru: int  # bytes: our segments to the peer stay within this
    peer_transfer_mru: int  # bytes: largest bundle the peer takes
    tls: bool = False  # the session runs inside TLS 1.3, the peer's node id authenticated


# --- events ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionUp:
    peer_node_id: str
    params: SessionParams


@dataclass(frozen=True, slots=True)
class TransferReceived:
    """A whole bundle arrived; answer with accept_transfer() or refuse_transfer()."""

    transfer_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TransferAcked:
    transfer_id: int
    acked_len: int  # bytes acknowledged so far
    final: bool  # the whole bundle is acknowledged: the sender may release it


@dataclass(frozen=True, slots=True)
class TransferRefused:
    transfer_id: int
    reason: int  # RefuseReason code as the peer sent it


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """An outgoing transfer that will never be acknowledged in this session."""

    transfer_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over; the driver closes TCP after writing data_to_send()."""

    reason: str
    clean: bool  # both SESS_TERMs exchanged and no transfer cut short


@dataclass(frozen=True, slots=True)
class StartTls:
    """Both sides set CAN_TLS: the driver writes data_to_send(), then runs the TLS handshake.

    The active side is the TLS client (RFC 9174 4.4.3). The driver answers with
    ``tls_established()`` or ``tls_failed()``; until then it reads nothing.
    """

    server_side: bool


@dataclass(frozen=True, slots=True)
class TlsFailed:
    """TLS negotiation failed or was refused; the session ends (SessionEnded follows).

    ``claimed`` is the node id the peer gave (its SESS_INIT) or we meant to reach;
    ``certified`` the node ids its certificate carries.
    """

    reason: str
    claimed: str | None = None
    certified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Violation:
    """The peer broke the protocol; ``reason`` is a counter key."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LimitReached:
    """One of the agent's limits refused a transfer or ended the session (hilnet.agent.cla.limits)."""

    limit: str  # memory, partial or transfer
    detail: str = ""


Event = (
    LimitReached
    | SessionUp
    | TransferReceived
    | TransferAcked
    | TransferRefused
    | TransferFailed
    | SessionEnded
    | StartTls
    | TlsFailed
    | Violation
)


class Outbox:
    """Control messages to write and events for the driver, in the order they arose.

    One per session, shared by the session and its sending and receiving
    halves so that what each of them says keeps its place in the stream.
    TCPCLv3 sessions use it too, with events of their own beside these
    (:mod:`~hilnet.agent.cla.tcpclv3_events`), hence ``Any``.
    """

    __slots__ = ("ctl", "events")

    def __init__(self) -> None:
        self.ctl: deque[bytes] = deque()  # whole messages to send before any more segment
        self.events: list[Any] = []

    def violation(self, reason: str, detail: str = "") -> None:
        self.events.append(Violation(reason, detail))

    def reject(self, reason: RejectReason, header: int, counter: str) -> None:
        """Count a peer's message as a violation and answer it with MSG_REJECT."""
        self.violation(counter)
        self.ctl.append(encode_msg_reject(reason, header))

    def take_events(self) -> list[Any]:
        ev, self.events = self.events, []
        return ev
