"""What the contact plan tells LTP about one peer: when to send, how fast, and how long to wait.

LTP has no handshake and no congestion control, so, as ION does, it takes all
three from the plan (times here are the agent's clock, ns; the plan's contacts
are moved onto it by adding the plan's epoch, and each ends one light time
early: what would still be in flight when the window closes is lost with it):

- **sending**: data goes out only while a contact from us to the peer is open,
  at that contact's rate (the sender paces to it); with no contact planned for
  the peer at all, always, at the configured rate.
- **round trip**: a retransmission timeout is the light time out plus the
  light time back (the plan's one-way times) plus a margin for queueing and
  the peer's processing.
- **suspension**: a timer runs only while the plan says the peer can answer,
  i.e. while a contact from the peer to us is open. :meth:`PeerPlan.expiry`
  gives the instant a timer started at ``start`` runs out after counting
  ``duration`` of such time, so a checkpoint sent just before a window closes
  is not counted lost during the gap: its timer stops at the close and goes on
  when the plan reopens the contact. A timer that would run out only after
  the last planned contact never does (None); the session's lifetime limit
  reclaims it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from hilnet.scenario.contact import Contact


@dataclass(frozen=True, slots=True)
class Window:
    """A planned contact in one direction, on the agent's clock: [start, end), ``rate`` bytes/s, light time."""

    start: int
    end: int
    rate: int
    owlt: int


@dataclass(frozen=True, slots=True)
class PeerPlan:
    """The contacts between us and one peer. ``out``: us to the peer; ``back``: the peer to us.

    Both are sorted; ``back`` is merged where windows touch or overlap (a
    parameter change splits a window in the plan, not in reality).
    """

    out: tuple[Window, ...] = ()
    back: tuple[Window, ...] = ()

    @property
    def planned(self) -> bool:
        """Whether the plan says anything of this peer (no contacts at all: always open)."""
        return bool(self.out or self.back)

    def sending(self, now: int) -> Window | None:
        """The contact to the peer open at ``now``, or None when the plan holds it closed."""
        i = bisect.bisect_right([w.start for w in self.out], now) - 1
        while i >= 0 and self.out[i].end > now:  # overlapping windows: the latest-started open one
            if self.out[i].start <= now:
                return self.out[i]
            i -= 1
        return None

    def next_send(self, now: int) -> int | None:
        """When a contact to the peer is next open (``now`` if one is), or None if never again."""
        for w in self.out:
            if w.end > now:
                return max(w.start, now)
        return None

    def round_trip(self, now: int) -> int:
        """Light time out and back (ns): the contacts open at ``now`` if any, else the longest planned."""

        def one_way(ws: tuple[Window, ...]) -> int:
            open_ = [w.owlt for w in ws if w.start <= now < w.end]
            return max(open_ or [w.owlt for w in ws] or [0])

        return one_way(self.out) + one_way(self.back)

    def expiry(self, start: int, duration: int) -> int | None:
        """When a timer started at ``start`` has run for ``duration`` ns of time the peer can answer in."""
        if not self.back:
            return start + duration
        left = duration
        for w in self.back:
            if w.end <= start:
                continue
            begin = max(w.start, start)
            if begin + left <= w.end:
                return begin + left
            left -= w.end - begin
        return None


def peer_plan(contacts: Iterable[Contact], node: str, peer: str, epoch_ns: int) -> PeerPlan:
    """The contacts of ``node`` with ``peer`` (scenario node names; plan times) on the agent's clock."""
    out, back = [], []
    for c in contacts:
        # What is sent in the last light time of a window is still in flight when it closes, and a closing
        # link (the emulator's gate, a receiver losing the signal) loses it: a window is usable to its end
        # less the light time.
        end = c.end_ns - c.owlt_ns
        if end <= c.start_ns:
            continue
        w = Window(epoch_ns + c.start_ns, epoch_ns + end, c.rate, c.owlt_ns)
        if (c.frm, c.to) == (node, peer):
            out.append(w)
        elif (c.frm, c.to) == (peer, node):
            back.append(w)
    return PeerPlan(tuple(sorted(out, key=lambda w: w.start)), _merged(back))


def _merged(ws: list[Window]) -> tuple[Window, ...]:
    out: list[Window] = []
    for w in sorted(ws, key=lambda w: w.start):
        if out and w.start <= out[-1].end:
            last = out[-1]
            out[-1] = Window(last.start, max(last.end, w.end), max(last.rate, w.rate), max(last.owlt, w.owlt))
        else:
            out.append(w)
    return tuple(out)
