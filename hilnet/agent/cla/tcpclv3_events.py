"""Values a TCPCLv3 session takes and gives: its configuration, what it negotiated, its own events.

The events both TCPCL versions share (a bundle received, acknowledged,
refused or failed; the session ended; a violation; a limit) are
:mod:`~hilnet.agent.cla.tcpcl_events`' and re-exported here, so a driver
reads one vocabulary; what only version 3 says is defined below.
:class:`~hilnet.agent.cla.tcpcl_events.Outbox` collects what the session and
its two halves have to say, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hilnet.agent.cla.budget import MemoryBudget
from hilnet.agent.cla.tcpcl_events import (
    NS_PER_S,
    LimitReached,
    Outbox,
    SessionEnded,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)

__all__ = [
    "NS_PER_S",
    "LimitReached",
    "Outbox",
    "PeerShutdown",
    "SessionConfig",
    "SessionEnded",
    "SessionParams",
    "SessionUp",
    "TransferAcked",
    "TransferFailed",
    "TransferReceived",
    "TransferRefused",
    "Violation",
]


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Our side of a TCPCLv3 session. Sizes in bytes, times in ns unless named ``_s``.

    The field names the liveness timers read are those of TCPCLv4's config:
    both versions keep time with :class:`~hilnet.agent.cla.tcpcl_liveness.Liveness`.
    """

    node_id: str  # the EID our contact header carries
    keepalive_s: int = 10  # offered keepalive interval, s (0: none)
    transfer_mru: int = 256 << 20  # largest bundle we take
    max_segment: int = 1 << 20  # largest DATA_SEGMENT we send
    handshake_timeout_ns: int = 10 * NS_PER_S  # for the peer's contact header
    term_timeout_ns: int = 5 * NS_PER_S  # unused: a SHUTDOWN is never answered (Liveness reads it)
    max_eid_len: int = 1024  # octets of the peer's EID we accept
    refusals: bool = True  # offer bundle refusal (needs the peer's too)
    lengths: bool = True  # ask for LENGTH messages (the peer's too)
    busy_delay_s: int = 1  # reconnection delay we ask for when we end a session "busy"
    partial_timeout_ns: int = 0  # an incoming bundle with no segment done for this long ends the session (0: off)
    transfer_timeout_ns: int = 0  # our bundle with no ack progress for this long ends it (0: off)
    budget: MemoryBudget | None = None  # shared by every session of the agent (hilnet.agent.cla.limits)


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What the contact headers settled (RFC 7242 4.2): each feature only if both sides set it."""

    peer_eid: str  # "" when the peer sent none
    keepalive_s: int  # the smaller offer; 0 = off
    refusals: bool  # REFUSE_BUNDLE may be sent
    lengths: bool  # LENGTH goes before each bundle
    peer_flags: int  # the peer's contact header flags as sent


@dataclass(frozen=True, slots=True)
class SessionUp:
    peer_eid: str
    params: SessionParams


@dataclass(frozen=True, slots=True)
class PeerShutdown:
    """The peer ended the session with SHUTDOWN; ``delay_s``: how long it asked us to wait before reconnecting."""

    reason: int | None
    delay_s: int | None
