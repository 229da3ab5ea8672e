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
- Whatever the keepalive (hilnet.agent.cla.limits): an incoming transfer that
  completes no segment for ``partial_timeout_ns`` ends the session (a peer
  that starts a bundle and stalls holds memory), and so does our transfer
  whose XFER_ACKs make no progress for ``transfer_timeout_ns`` (a peer that
  never acknowledges would keep bundles in flight forever with keepalive 0;
  ending the session fails the send, and the agent keeps the bundle and
  retries it).
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from hilnet.agent.cla.tcpcl_events import NS_PER_S, Event, LimitReached, SessionConfig


class _Receiving(Protocol):
    @property
    def partial(self) -> bool: ...

    segments_done: int


class _Sending(Protocol):
    @property
    def unacked(self) -> bool: ...

    acks_progressed: int


class Due(Enum):
    """What a passed deadline asks of the session, most urgent first."""

    HANDSHAKE = "handshake"  # no Contact Header or SESS_INIT in time: end
    IDLE = "idle"  # nothing received for twice the keepalive interval: end
    TERM_REPLY = "term_reply"  # no SESS_TERM reply in time: end
    PARTIAL = "partial"  # an incoming transfer stalled: end
    TRANSFER = "transfer"  # our transfer is not acknowledged: end
    KEEPALIVE = "keepalive"  # nothing sent for one keepalive interval: send KEEPALIVE


STALLED = {  # the timeouts that end a session, and the reason each gives
    Due.IDLE: "idle timeout: nothing received for twice the keepalive interval",
    Due.PARTIAL: "partial transfer timeout: an incoming transfer made no progress",
    Due.TRANSFER: "transfer timeout: the peer acknowledged nothing of our transfer",
}


def stalled_events(due: Due) -> list[Event]:
    """The event saying one of the agent's limits (not the keepalive) ended the session, if one did."""
    return [LimitReached(due.value, STALLED[due])] if due in (Due.PARTIAL, Due.TRANSFER) else []


class Liveness:
    """Deadlines of one session; ``now_ns`` values are the driver's clock."""

    __slots__ = (
        "handshake_until_ns",
        "keepalive_ns",
        "last_rx_ns",
        "last_tx_ns",
        "term_timeout_ns",
        "term_until_ns",
        "_progress",
    )

    def __init__(self, config: SessionConfig, now_ns: int, send: _Sending, recv: _Receiving):
        self.handshake_until_ns: int | None = now_ns + config.handshake_timeout_ns
        self.term_timeout_ns = config.term_timeout_ns
        self.keepalive_ns = 0  # negotiated interval; 0 = no keepalives, no idle timeout
        self.last_rx_ns = now_ns
        self.last_tx_ns = now_ns
        self.term_until_ns: int | None = None  # when our SESS_TERM's reply is overdue
        self._progress = _Progress(config, send, recv)

    def established(self, keepalive_s: int, now_ns: int) -> None:
        """SESS_INIT exchanged with the negotiated keepalive (s): the handshake timer stops."""
        self.handshake_until_ns = None
        self.keepalive_ns = keepalive_s * NS_PER_S
        self.last_rx_ns = self.last_tx_ns = now_ns

    def received(self, now_ns: int) -> None:
        self.last_rx_ns = now_ns

    def observe(self, now_ns: int) -> None:
        """Octets were read (or written): note the progress transfers made in either direction."""
        self._progress.observe(now_ns)

    def resumed(self, now_ns: int) -> None:
        """The agent answered a received bundle: the paused receive timer runs again from now."""
        self.last_rx_ns = max(self.last_rx_ns, now_ns)

    def sent(self, now_ns: int) -> None:
        self.last_tx_ns = now_ns
        self._progress.observe(now_ns)

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
        times += self._progress.deadlines(receive_paused)
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
        stalled = self._progress.due(now_ns, receive_paused)
        if stalled is not None:
            return stalled
        if ka and now_ns >= self.last_tx_ns + ka:
            return Due.KEEPALIVE
        return None


class _Progress:
    """The partial-transfer and transfer timers: when each direction last moved on."""

    __slots__ = ("partial_ns", "transfer_ns", "send", "recv", "rx_since_ns", "tx_since_ns", "_segments", "_acks")

    def __init__(self, config: SessionConfig, send: _Sending, recv: _Receiving):
        self.partial_ns = config.partial_timeout_ns
        self.transfer_ns = config.transfer_timeout_ns
        self.send = send
        self.recv = recv
        self.rx_since_ns: int | None = None  # the incoming transfer last completed a segment (or began)
        self.tx_since_ns: int | None = None  # our unacknowledged octets last saw an ack move (or left)
        self._segments = 0
        self._acks = 0

    def observe(self, now_ns: int) -> None:
        recv, send = self.recv, self.send
        if not recv.partial:
            self.rx_since_ns = None
        elif self.rx_since_ns is None or recv.segments_done != self._segments:
            self.rx_since_ns = now_ns
        self._segments = recv.segments_done
        if not send.unacked:
            self.tx_since_ns = None
        elif self.tx_since_ns is None or send.acks_progressed != self._acks:
            self.tx_since_ns = now_ns
        self._acks = send.acks_progressed

    def deadlines(self, receive_paused: bool) -> list[int]:
        out = []
        if self.partial_ns and self.rx_since_ns is not None and not receive_paused:
            out.append(self.rx_since_ns + self.partial_ns)
        if self.transfer_ns and self.tx_since_ns is not None:
            out.append(self.tx_since_ns + self.transfer_ns)
        return out

    def due(self, now_ns: int, receive_paused: bool) -> Due | None:
        if self.partial_ns and self.rx_since_ns is not None and not receive_paused:
            if now_ns >= self.rx_since_ns + self.partial_ns:
                return Due.PARTIAL
        if self.transfer_ns and self.tx_since_ns is not None and now_ns >= self.tx_since_ns + self.transfer_ns:
            return Due.TRANSFER
        return None
