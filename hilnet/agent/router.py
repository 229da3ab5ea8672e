"""Contact graph routing (CGR) over a contact plan, and static routes. Pure: no I/O.

The plan is a set of one-way :class:`~hilnet.scenario.contact.Contact` values
between scenario node names; :mod:`hilnet.agent.cgr` finds the earliest arrival
through it (the usual CGR formulation; RFC 9171 leaves routing open).

Bookings model the contact's remaining volume: bytes already booked on a
contact are assumed to go first, from its start. That is conservative when a
booked bundle will in fact reach the contact late; the volume check alone
would be optimistic in the opposite case.

Bookings are per class of service, as ION's CGR books them (ipnfw.c reserves a
routed bundle's size from the contact's ``mtv[p]`` for its priority ``p`` and
every lower one; libcgr.c checks ``mtv[p]`` alone). So a bundle of class ``k``
sees as booked what bundles of class ``k`` and above booked: a bulk bundle is
not routed into volume the plan already promises to higher classes, and an
expedited bundle queues only behind expedited ones, as the forwarder and the
CLAs send it.

:class:`Router` is one node's view: the plan, bookings, contacts found down
although the plan said up, and static next-hop routes (``dest -> next hop``,
``"*"`` the default) used when the plan has no route. A failed contact is
excluded until its window ends or the link is reported up again, so a bundle
routed over it is re-routed or waits; the router never drops a bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hilnet.agent.cgr import Route, earliest_arrival, index_by_source, route_arrival, search, transmit_ns
from hilnet.scenario.contact import Contact

__all__ = ["Decision", "Route", "Router", "earliest_arrival", "route_arrival", "transmit_ns"]

#: classes of service, lowest first: 0 bulk, 1 standard, 2 expedited (hilnet.bundle.cos.Priority)
CLASSES = (0, 1, 2)
STANDARD = 1

#: Static route key that matches every destination without its own route.
DEFAULT_ROUTE = "*"


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


def _klass(priority: int) -> int:
    if priority not in CLASSES:
        raise ValueError(f"class of service must be 0, 1 or 2, got {priority}")
    return priority


# The last plan indexed: the agents one host process runs share one contacts tuple
# (hilnet/agent/host.py), and so this read-only index, instead of one copy each.
_last_index: tuple[tuple[Contact, ...], dict[str, list[Contact]]] | None = None


def _shared_index(contacts: tuple[Contact, ...]) -> dict[str, list[Contact]]:
    global _last_index
    if _last_index is None or _last_index[0] is not contacts:
        _last_index = (contacts, index_by_source(contacts))
    return _last_index[1]


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
        self._out = _shared_index(self.contacts)
        # _claimed[k][c]: bytes of contact c claimed against class k, i.e. booked by
        # bundles of class k or above (ION's mtv[k] reductions)
        self._claimed: tuple[dict[Contact, int], ...] = tuple({} for _ in CLASSES)
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
        priority: int = STANDARD,
    ) -> Decision:
        """Where to send a bundle of ``size`` bytes for ``dest_node`` that expires at ``expires_at_ns``.

        ``priority`` is its class of service (0 bulk, 1 standard, 2 expedited):
        it sees the bookings of its class and above. The plan (with bookings
        and failed contacts) comes first; without a
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

        claimed = self._claimed[_klass(priority)]
        route = search(self._out, self.node, dest_node, now_ns, size, expires_at_ns, claimed, usable)
        if route is not None:
            send_at = max(now_ns, route.hops[0].start_ns)
            return Decision(route.next_hop, send_at, route.arrival_ns, "contact plan", route)

        static = self._static(dest_node, now_ns, excluded)
        if static is not None:
            return static
        why = self._why_not(dest_node, now_ns, size, expires_at_ns, excluded, claimed)
        return Decision(None, None, None, why)

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

    def _why_not(
        self,
        dest: str,
        now_ns: int,
        size: int,
        expires_at_ns: int,
        excluded: frozenset[str],
        claimed: Mapping[Contact, int],
    ) -> str:
        if not self.contacts:
            return f"no contact plan and no static route to {dest}"
        unbounded = search(
            self._out,
            self.node,
            dest,
            now_ns,
            size,
            None,
            claimed,
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

    def book(self, route: Route, size: int, priority: int = STANDARD) -> None:
        """Reserve ``size`` bytes on every contact of ``route`` for a bundle of class ``priority``.

        As ION: the bytes are claimed against that class and every lower one.
        """
        for claimed in self._claimed[: _klass(priority) + 1]:
            for c in route.hops:
                claimed[c] = claimed.get(c, 0) + size

    def release(self, route: Route, size: int, priority: int = STANDARD) -> None:
        """Undo :meth:`book` (the bundle expired, was refused, or is being re-routed)."""
        for claimed in self._claimed[: _klass(priority) + 1]:
            for c in route.hops:
                left = claimed.get(c, 0) - size
                if left > 0:
                    claimed[c] = left
                else:
                    claimed.pop(c, None)

    def booked(self, contact: Contact, priority: int = 0) -> int:
        """Bytes of ``contact`` a bundle of class ``priority`` finds booked (the default: all bookings)."""
        return self._claimed[_klass(priority)].get(contact, 0)

    def forget_past(self, now_ns: int) -> None:
        """Drop bookings on contacts that ended by ``now_ns`` (housekeeping; they can carry nothing)."""
        for claimed in self._claimed:
            for c in [c for c in claimed if c.end_ns <= now_ns]:
                del claimed[c]

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
