"""Earliest-arrival search over a contact plan: the pure core of contact graph routing. No I/O.

A bundle of ``size`` bytes that is at node ``u`` at time ``t`` can take contact
``c`` (``c.frm == u``) when

    start  = max(t, c.start_ns + transmit(booked[c]))   # queue ahead of it
    done   = start + transmit(size)                     # transmit(n) = ceil(n * 1e9 / rate) ns
    usable = start < c.end_ns and done <= c.end_ns and booked[c] + size <= c.volume

and then reaches ``c.to`` at ``done + c.owlt_ns``: the whole bundle must have
arrived before a relay may forward it (store and forward, no cut-through).
Arrival through a contact never gets earlier when the bundle reaches ``c.frm``
later (waiting is always allowed), so Dijkstra on arrival time finds the
earliest arrival exactly. :mod:`hilnet.agent.router` keeps one node's state
(bookings per class, failed links, static routes) around it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hilnet.scenario.contact import Contact

NS_PER_S = 1_000_000_000


def transmit_ns(size_bytes: int, rate: int) -> int:
    """Time to put ``size_bytes`` on a contact of ``rate`` bytes/s, ns, rounded up."""
    return -(-size_bytes * NS_PER_S // rate)


@dataclass(frozen=True, slots=True)
class Route:
    """A path through the contact plan and when the bundle gets to its end.

    ``hops`` are the contacts in order (empty when source is the destination);
    ``next_hop`` is the receiving node of the first hop (the destination itself
    for an empty route); ``first_send_ns`` is when transmission on the first hop
    is computed to start (after any booked bytes ahead of it); ``arrival_ns`` is
    when the last byte reaches the destination. Times in ns, plan time.
    """

    hops: tuple[Contact, ...]
    arrival_ns: int
    next_hop: str
    first_send_ns: int

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node on the route, source first."""
        if not self.hops:
            return (self.next_hop,)
        return (self.hops[0].frm,) + tuple(c.to for c in self.hops)


def _hop(c: Contact, t_ns: int, size: int, booked: int) -> tuple[int, int] | None:
    """(start of transmission, arrival at c.to) for a bundle at c.frm at t_ns; None if unusable."""
    if c.rate <= 0 or booked + size > c.volume:
        return None
    start = max(t_ns, c.start_ns + transmit_ns(booked, c.rate) if booked else c.start_ns)
    if start >= c.end_ns:
        return None
    done = start + transmit_ns(size, c.rate)
    if done > c.end_ns:
        return None
    return start, done + c.owlt_ns


def route_arrival(
    hops: Sequence[Contact], t0_ns: int, size_bytes: int, booked: Mapping[Contact, int] | None = None
) -> int | None:
    """Arrival time, ns, of a bundle that leaves ``hops[0].frm`` at ``t0_ns`` along ``hops``.

    None when a hop is unusable or the hops do not chain. The per-path rule that
    :func:`earliest_arrival` optimises; also the checks' way to price a path.
    """
    booked = booked or {}
    t = t0_ns
    for i, c in enumerate(hops):
        if i and hops[i - 1].to != c.frm:
            return None
        times = _hop(c, t, size_bytes, booked.get(c, 0))
        if times is None:
            return None
        t = times[1]
    return t


def index_by_source(contacts: Iterable[Contact]) -> dict[str, list[Contact]]:
    out: dict[str, list[Contact]] = {}
    for c in contacts:
        out.setdefault(c.frm, []).append(c)
    for cs in out.values():
        cs.sort(key=lambda c: (c.start_ns, c.end_ns, c.to))
    return out


def search(
    out: Mapping[str, Sequence[Contact]],
    source: str,
    dest: str,
    t0_ns: int,
    size: int,
    deadline_ns: int | None,
    booked: Mapping[Contact, int],
    usable: Callable[[Contact], bool] | None,
) -> Route | None:
    if deadline_ns is not None and t0_ns > deadline_ns:
        return None
    if source == dest:
        return Route((), t0_ns, dest, t0_ns)
    best: dict[str, int] = {source: t0_ns}
    # node -> (contact that reached it, transmission start on that contact)
    via: dict[str, tuple[Contact, int]] = {}
    done: set[str] = set()
    # (arrival, hops, tie-break counter, node); hops and counter only make the order deterministic
    heap: list[tuple[int, int, int, str]] = [(t0_ns, 0, 0, source)]
    counter = 1
    while heap:
        t, nhops, _, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        if u == dest:
            break
        for c in out.get(u, ()):
            if c.to in done or c.end_ns <= t or (usable is not None and not usable(c)):
                continue
            times = _hop(c, t, size, booked.get(c, 0))
            if times is None:
                continue
            start, arrival = times
            if deadline_ns is not None and arrival > deadline_ns:
                continue
            if arrival < best.get(c.to, arrival + 1):
                best[c.to] = arrival
                via[c.to] = (c, start)
                heapq.heappush(heap, (arrival, nhops + 1, counter, c.to))
                counter += 1
    if dest not in done:
        return None
    hops: list[Contact] = []
    node = dest
    first_send = t0_ns
    while node != source:
        c, first_send = via[node]
        hops.append(c)
        node = c.frm
    hops.reverse()
    return Route(tuple(hops), best[dest], hops[0].to, first_send)


def earliest_arrival(
    contacts: Iterable[Contact],
    source: str,
    dest: str,
    t0_ns: int,
    size_bytes: int,
    *,
    deadline_ns: int | None = None,
    booked: Mapping[Contact, int] | None = None,
) -> Route | None:
    """The route from ``source`` (at ``t0_ns``) that reaches ``dest`` first, or None.

    ``size_bytes`` decides transmit times and whether a contact's volume (less
    its ``booked`` bytes) can carry the bundle; ``deadline_ns`` (the bundle's
    expiry) bounds the arrival, inclusive. With ``booked=None`` this is the
    bundle "as if alone", the oracle the run checks compare deliveries to.
    Times ns, sizes bytes, rates bytes/s.
    """
    if size_bytes < 0:
        raise ValueError(f"size must be >= 0 bytes, got {size_bytes}")
    return search(index_by_source(contacts), source, dest, t0_ns, size_bytes, deadline_ns, booked or {}, None)
