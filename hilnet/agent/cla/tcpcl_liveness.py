"""The timers of one TCPCLv4 session: handshake, keepalive, idle and SESS_TERM-reply timeouts.

Sans-I/O, owned by :class:`~hilnet.agent.cla.tcpcl_session.TcpclSession`, which
tells it what happened (octets sent or received, the session came up, our
SESS_TERM went out, the peer's arrived) and asks it when to wake and what is
due then. All times are int ns of the driver's clock.

The policy (RFC 9174 5.1.1 leaves it to us):

- Until SESS_INIT is exchanged only the handshake timeout runs.
- Any octet received counts as life (a 1 MiB segment on a slow link is not
  idleness). With a negotiated keepalive K > 0, KEEPALIVE goes out after K s
  without sending, and the session ends "Idle timeout" after 2K s without
  receiving: this is how a link stalled by an outage is noticed.
- While a received bundle waits for the agent's commit the receive timer is
  paused (``receive_paused``), since the driver reads nothing meanwhile.
- After our own SESS_TERM, the peer has ``term_timeout_ns`` to answer.
"""

from __future__ import annotations

from enum import Enum

from hilnet.agent.cla.tcpcl_events import NS_PER_S, SessionConfig


class Due(Enum):
    """What a passed deadline asks of the session, most urgent first."""

    HANDSHAKE = "handshake"  # no Contact Header or SESS_INIT in time: end
    IDLE = "idle"  # nothing received for twice the keepalive interval: end
    TERM_REPLY = "term_reply"  # no SESS_TERM reply in time: end
    KEEPALIVE = "keepalive"  # nothing sent for one keepalive interval: send KEEPALIVE


class Liveness:
    """Deadlines of one session; ``now_ns`` values are the driver's clock."""

    __slots__ = ("handshake_until_ns", "keepalive_ns", "last_rx_ns", "last_tx_ns", "term_timeout_ns", "term_until_ns")

    def __init__(self, config: SessionConfig, now_ns: int):
        self.handshake_until_ns: int | None = now_ns + config.handshake_timeout_ns
        self.term_timeout_ns = config.term_timeout_ns
        self.keepalive_ns = 0  # negotiated interval; 0 = no keepalives, no idle timeout
        self.last_rx_ns = now_ns
        self.last_tx_ns = now_ns
        self.term_until_ns: int | None = None  # when our SESS_TERM's reply is overdue

    def established(self, keepalive_s: int, now_ns: int) -> None:
        """SESS_INIT exchanged with the negotiated keepalive (s): the handshake timer stops."""
        self.handshake_until_ns = None
        self.keepalive_ns = keepalive_s * NS_PER_S
        self.last_rx_ns = self.last_tx_ns = now_ns

    def received(self, now_ns: int) -> None:
        self.last_rx_ns = now_ns

    def resumed(self, now_ns: int) -> None:
        """The agent answered a received bundle: the paused receive timer runs again from now."""
        self.last_rx_ns = max(self.last_rx_ns, now_ns)

    def sent(self, now_ns: int) -> None:
        self.last_tx_ns = now_ns

    def term_sent(self, now_ns: int) -> None:
        """Our SESS_TERM (not a reply) went out: the peer's reply is due within the term timeout."""
        self.term_until_ns = now_ns + self.term_timeout_ns

    def term_heard(self) -> None:
        self.term_until_ns = None

    def next_deadline_ns(self, receive_paused: bool) -> int | None:
        """When :meth:`due` may next say something (ns), or None."""
        if self.handshake_until_ns is not None:
            return self.handshake_until_ns
        times = []
        ka = self.keepalive_ns
        if ka:
            times.append(self.last_tx_ns + ka)
            if not receive_paused:
                times.append(self.last_rx_ns + 2 * ka)
        if self.term_until_ns is not None:
            times.append(self.term_until_ns)
        return min(times) if times else None

    def due(self, now_ns: int, receive_paused: bool) -> Due | None:
        """The most urgent deadline passed at ``now_ns``, or None (early calls)."""
        if self.handshake_until_ns is not None:
            return Due.HANDSHAKE if now_ns >= self.handshake_until_ns else None
        ka = self.keepalive_ns
        if ka and not receive_paused and now_ns >= self.last_rx_ns + 2 * ka:
            return Due.IDLE
        if self.term_until_ns is not None and now_ns >= self.term_until_ns:
            return Due.TERM_REPLY
        if ka and now_ns >= self.last_tx_ns + ka:
            return Due.KEEPALIVE
        return None
