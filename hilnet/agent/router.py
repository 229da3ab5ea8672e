"""Contact graph routing (CGR) over a contact plan, and static routes. Pure: no I/O.

The plan is a set of one-way :class:`~hilnet.scenario.contact.Contact` values
between scenario node names. A bundle of ``size`` bytes that is at node ``u``
at time ``t`` can take contact ``c`` (``c.frm == u``) when

    start  = max(t, c.start_ns + transmit(booked[c]))   # queue ahead of it, see below
    done   = start + transmit(size)                     # transmit(n) = ceil(n * 1e9 / rate) ns
    usable = start < c.end_ns and done <= c.end_ns and booked[c] + size <= c.volume

and then reaches ``c.to`` at ``done + c.owlt_ns``: the whole bundle must have
arrived before a relay may forward it (store and forward, no cut-through).
This is the usual CGR formulation (RFC 9171 leaves routing open). Arrival
through a contact never gets earlier when the bundle reaches ``c.frm`` later
(waiting is always allowed), so Dijkstra on arrival time finds the earliest
arrival exactly.

Bookings model the contact's remaining volume: bytes already booked on a
contact are assumed to go first, from its start. That is conservative when a
booked bundle will in fact reach the contact late; the volume check alone
would be optimistic in the opposite case.

:class:`Router` is one node's view: the plan, bookings, contacts found down
although the plan said up, and static next-hop routes (``dest -> next hop``,
``"*"`` the default) used when the plan has no route. A failed contact is
excluded until its window ends or the link is reported up again, so a bundle
routed over it is re-routed or waits; the router never drops a bundle.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hilnet.scenario.contact import Contact

NS_PER_S = 1_000_000_000

#: Static route key that matches every destination without its own route.
DEFAULT_ROUTE = "*"


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


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one bundle now.

    ``next_hop`` None means wait: no usable route now; ask again when the plan
    or the links change (:meth:`Router.next_change_ns`). ``send_at_ns`` is the
    earliest moment the first contact can carry the bundle (``now`` for a
    static route), ``arrival_ns`` the predicted arrival (None for static
    routes: they promise nothing). ``route`` is what :meth:`Router.book` takes.
    """

    next_hop: str | None
    send_at_ns: int | None
    arrival_ns: int | None
    reason: str
    route: Route | None = None


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


def _index(contacts: Iterable[Contact]) -> dict[str, list[Contact]]:
    out: dict[str, list[Contact]] = {}
    for c in contacts:
        out.setdefault(c.frm, []).append(c)
    for cs in out.values():
        cs.sort(key=lambda c: (c.start_ns, c.end_ns, c.to))
    return out


def _dijkstra(
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
    return _dijkstra(_index(contacts), source, dest, t0_ns, size_bytes, deadline_ns, booked or {}, None)


class Router:
    """Routing state of the agent of ``node``: plan, bookings, failed links, static routes.

    Node names are opaque strings: scenario names when there is a plan (map
    EIDs with :class:`hilnet.agent.nodes.NodeMap`), or node-id EIDs when there
    are only static routes. Not thread-safe; the agent calls it from one task.
    """

    def __init__(
        self,
        node: str,
        contacts: Iterable[Contact] = (),
        static_routes: Mapping[str, str] | None = None,
    ):
        self.node = node
        self.contacts: tuple[Contact, ...] = tuple(contacts)
        self.static_routes: dict[str, str] = dict(static_routes or {})
        self._out = _index(self.contacts)
        self._booked: dict[Contact, int] = {}
        # (frm, to) -> excluded until this plan time (ns), or None: until link_up()
        self._down: dict[tuple[str, str], int | None] = {}

    # -- routing -------------------------------------------------------------

    def route(
        self,
        dest_node: str,
        now_ns: int,
        size: int,
        expires_at_ns: int,
        *,
        excluded: frozenset[str] = frozenset(),
    ) -> Decision:
        """Where to send a bundle of ``size`` bytes for ``dest_node`` that expires at ``expires_at_ns``.

        The plan (with bookings and failed contacts) comes first; without a
        plan route, the static route for ``dest_node``, then the default
        ``"*"``. ``excluded`` nodes are never used as next hop or relay (the
        previous hop, a neighbour that refused the bundle). A bundle for this
        node gets ``Decision(node, now, now, "local")``. Times ns, size bytes.
        """
        if size < 0:
            raise ValueError(f"size must be >= 0 bytes, got {size}")
        if dest_node == self.node:
            return Decision(self.node, now_ns, now_ns, "local")
        if now_ns >= expires_at_ns:
            return Decision(None, None, None, f"expired at {expires_at_ns} ns")
        self._expire_failures(now_ns)

        def usable(c: Contact) -> bool:
            return c.to not in excluded and not self._excluded(c)

        route = _dijkstra(self._out, self.node, dest_node, now_ns, size, expires_at_ns, self._booked, usable)
        if route is not None:
            send_at = max(now_ns, route.hops[0].start_ns)
            return Decision(route.next_hop, send_at, route.arrival_ns, "contact plan", route)

        static = self._static(dest_node, now_ns, excluded)
        if static is not None:
            return static
        return Decision(None, None, None, self._why_not(dest_node, now_ns, size, expires_at_ns, excluded))

    def _static(self, dest_node: str, now_ns: int, excluded: frozenset[str]) -> Decision | None:
        if dest_node in self.static_routes:
            hop, kind = self.static_routes[dest_node], "static route"
        elif DEFAULT_ROUTE in self.static_routes:
            hop, kind = self.static_routes[DEFAULT_ROUTE], "default route"
        else:
            return None
        if hop == self.node:
            return None
        if hop in excluded:
            return Decision(None, None, None, f"{kind} next hop {hop} is excluded")
        if self.is_down(self.node, hop, now_ns):
            return Decision(None, None, None, f"{kind} next hop {hop} is down")
        return Decision(hop, now_ns, None, kind)

    def _why_not(self, dest: str, now_ns: int, size: int, expires_at_ns: int, excluded: frozenset[str]) -> str:
        if not self.contacts:
            return f"no contact plan and no static route to {dest}"
        unbounded = _dijkstra(
            self._out,
            self.node,
            dest,
            now_ns,
            size,
            None,
            self._booked,
            lambda c: c.to not in excluded and not self._excluded(c),
        )
        if unbounded is not None:
            return (
                f"no route to {dest} before expiry at {expires_at_ns} ns (earliest arrival {unbounded.arrival_ns} ns)"
            )
        down = sorted(f"{f}->{t}" for f, t in self._down)
        extra = f" (down: {', '.join(down)})" if down else ""
        return f"no route to {dest} in the contact plan for {size} bytes{extra}"

    # -- bookings -------------------------------------------------------------

    def book(self, route: Route, size: int) -> None:
        """Reserve ``size`` bytes on every contact of ``route`` (the bundle was routed over it)."""
        for c in route.hops:
            self._booked[c] = self._booked.get(c, 0) + size

    def release(self, route: Route, size: int) -> None:
        """Undo :meth:`book` (the bundle expired, was refused, or is being re-routed)."""
        for c in route.hops:
            left = self._booked.get(c, 0) - size
            if left > 0:
                self._booked[c] = left
            else:
                self._booked.pop(c, None)

    def booked(self, contact: Contact) -> int:
        """Bytes booked on ``contact``."""
        return self._booked.get(contact, 0)

    def forget_past(self, now_ns: int) -> None:
        """Drop bookings on contacts that ended by ``now_ns`` (housekeeping; they can carry nothing)."""
        for c in [c for c in self._booked if c.end_ns <= now_ns]:
            del self._booked[c]

    # -- link state -------------------------------------------------------------

    def contact_failed(self, frm: str, to: str, now_ns: int) -> None:
        """The link ``frm -> to`` is down although the plan may say up.

        Its contact active at ``now_ns`` is excluded until that window ends;
        with no active planned window, the link is excluded until
        :meth:`link_up`. Later windows stay usable, so bundles wait for them or
        take another path.
        """
        ends = [c.end_ns for c in self._out.get(frm, ()) if c.to == to and c.start_ns <= now_ns < c.end_ns]
        until = max(ends) if ends else None
        key = (frm, to)
        if key in self._down and self._down[key] is None:
            return  # already down until told up: stays that way
        if until is None or until > (self._down.get(key) or 0):
            self._down[key] = until

    def link_up(self, frm: str, to: str) -> None:
        """The link ``frm -> to`` works again (a session came up): end its exclusion."""
        self._down.pop((frm, to), None)

    def is_down(self, frm: str, to: str, now_ns: int) -> bool:
        """Whether ``frm -> to`` was reported failed and is still excluded at ``now_ns``."""
        if (frm, to) not in self._down:
            return False
        until = self._down[(frm, to)]
        return until is None or now_ns < until

    def _excluded(self, c: Contact) -> bool:
        key = (c.frm, c.to)
        if key not in self._down:
            return False
        until = self._down[key]
        return until is None or c.start_ns < until

    def _expire_failures(self, now_ns: int) -> None:
        for key in [k for k, u in self._down.items() if u is not None and u <= now_ns]:
            del self._down[key]

    def contacts_active(self, now_ns: int) -> tuple[Contact, ...]:
        """Contacts from this node open at ``now_ns`` and not reported failed."""
        return tuple(
            c
            for c in self._out.get(self.node, ())
            if c.start_ns <= now_ns < c.end_ns and not self.is_down(c.frm, c.to, now_ns)
        )

    def neighbours_up(self, now_ns: int) -> frozenset[str]:
        """Nodes this node's plan lets it send to at ``now_ns`` (failed links left out)."""
        return frozenset(c.to for c in self.contacts_active(now_ns))

    def next_change_ns(self, now_ns: int) -> int | None:
        """Next time after ``now_ns`` at which waiting bundles should be routed again.

        That is when a contact from this node opens or closes, or a failure
        exclusion ends; None if nothing is scheduled (only :meth:`link_up` or
        new bundles change the picture then).
        """
        times = [u for u in self._down.values() if u is not None and u > now_ns]
        for c in self._out.get(self.node, ()):
            times.extend(t for t in (c.start_ns, c.end_ns) if t > now_ns)
        return min(times, default=None)
