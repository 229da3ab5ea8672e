"""When each LTP segment may leave: per peer, control first, at the contact's rate, never while it is closed.

LTP has no congestion control, so the sender must not put more on a link than
it carries: segments to a peer leave at the rate of the plan's open contact
to it (:class:`~hilnet.agent.cla.ltp_plan.PeerPlan`), and not at all while
the plan says that contact is closed (what a closed link would drop is kept
until it reopens). With no contact planned for the peer, the configured rate
applies (0: as fast as the socket takes them).

A contact's rate is bundle bytes per second after Ethernet and TCP/IP
overhead (:mod:`hilnet.scenario.overhead`); a UDP datagram is charged its
length plus IPv4, UDP and Ethernet framing, converted into those units, so
the pacer fills the link without outrunning it. Sans-I/O: ``now`` in,
segments out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hilnet.agent.cla.ltp_session import NS_PER_S, Lazy, Outgoing, Peer
from hilnet.scenario.overhead import ETH_WIRE_EXTRA, efficiency

IP_UDP_HEADERS = 20 + 8
BURST_NS = 10_000_000  # credit a late wake-up may catch up on: a busy host wakes the driver milliseconds late
PACE_SHARE = 0.998  # of the contact's rate: a hair under, so the link's queue does not grow


def wire_cost(datagram_len: int) -> float:
    """What a datagram of ``datagram_len`` bytes costs of a contact's rate (bundle bytes after overhead)."""
    return (datagram_len + IP_UDP_HEADERS + ETH_WIRE_EXTRA) * efficiency("ethernet")


@dataclass(slots=True)
class _Queue:
    peer: Peer
    control: deque[Outgoing] = field(default_factory=deque)
    data: deque[Outgoing | Lazy] = field(default_factory=deque)
    free_at: int = 0  # when the link is free for the next segment (ns)

    def __len__(self) -> int:
        return len(self.control) + len(self.data)

    def pop(self) -> Outgoing | None:
        """The next segment to leave (None: a lazy source ran dry; ask again)."""
        if self.control:
            return self.control.popleft()
        head = self.data[0]
        if isinstance(head, Outgoing):
            self.data.popleft()
            return head
        out = next(head.segments, None)
        if out is None:
            self.data.popleft()
        return out


class Pacer:
    """The segments waiting to leave, per peer engine; ``default_rate`` bytes/s where the plan is silent."""

    def __init__(self, default_rate: int = 0):
        self.default_rate = default_rate
        self._queues: dict[int, _Queue] = {}

    def add_peer(self, peer: Peer) -> None:
        """A peer to pace for; one known already keeps its queue and takes the new plan."""
        q = self._queues.get(peer.engine)
        if q is None:
            self._queues[peer.engine] = _Queue(peer)
        else:
            q.peer = peer

    def put(self, out: Outgoing | Lazy) -> None:
        q = self._queues[out.peer]
        if isinstance(out, Outgoing) and out.control:
            q.control.append(out)
        elif isinstance(out, Lazy):
            # By class of service: ahead of every lower-ranked first pass, even one half sent (LTP sessions
            # are independent, so the other simply pauses), after those of its own rank.
            at = next((i for i, x in enumerate(q.data) if isinstance(x, Lazy) and x.rank < out.rank), len(q.data))
            q.data.insert(at, out)
        else:
            q.data.append(out)

    def due(self, now: int) -> list[Outgoing]:
        """The segments that may leave at ``now``, in order; each one's ``on_sent`` is called."""
        sent: list[Outgoing] = []
        for q in self._queues.values():
            rate = self._rate(q.peer, now)
            if rate is None:
                continue  # the plan holds the contact closed: keep them
            q.free_at = max(q.free_at, now - BURST_NS)
            while len(q) and (rate == 0 or q.free_at <= now):
                out = q.pop()
                if out is None or out.dropped:
                    continue
                if rate:
                    q.free_at += int(wire_cost(len(out.datagram)) * NS_PER_S / rate)
                if out.on_sent is not None:
                    out.on_sent(now)
                sent.append(out)
        return sent

    def next_time(self, now: int) -> int | None:
        """When :meth:`due` has something to hand out next, or None while nothing waits that could leave."""
        best: int | None = None
        for q in self._queues.values():
            if not len(q):
                continue
            rate = self._rate(q.peer, now)
            if rate is None:
                at = q.peer.plan.next_send(now)
            else:
                at = max(now, q.free_at) if rate else now
            if at is not None and (best is None or at < best):
                best = at
        return best

    def _rate(self, peer: Peer, now: int) -> float | None:
        if not peer.plan.planned:
            return self.default_rate * PACE_SHARE
        if not peer.plan.out:
            return self.default_rate * PACE_SHARE  # the plan has only the way back: nothing to pace to
        w = peer.plan.sending(now)
        return None if w is None else w.rate * PACE_SHARE
