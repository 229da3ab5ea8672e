"""The forwarder: route stored bundles, queue them per peer, send, and free what was acked.

One :class:`Forwarder` belongs to one :class:`~hilnet.agent.agent.Agent`. The
agent tells it which bundles are in the store (:meth:`Forwarder.track`) and
when something changed (:meth:`Forwarder.wake`); the forwarder's task then
routes what became ready, books contact volume in the router, dispatches
sends to peers with a session up (bounded in flight per peer), and deletes a
bundle once the next hop acknowledged it. Bundles for this node are handed
back to the agent (:meth:`ForwarderOwner.deliver_local`): delivery is the agent's job.

What the forwarder needs of the agent is one small interface,
:class:`ForwarderOwner`; the rest it is given as plain values.

Classes of service: a stored bundle's ``priority`` is its rank
(:mod:`hilnet.bundle.cos`: class, then ordinal inside expedited), read from its
type-193 block on every node, relays included. Each peer's queue is ordered by
rank, then arrival; the router books volume per class; and the rank goes down
to the CLA with each send, so a CLA can put an expedited bundle ahead of bulk
ones already handed to it (the forwarder keeps up to
:data:`MAX_INFLIGHT_PER_PEER` bundles in a CLA's hands).

Time: ``owner.plan_now()`` is ns of plan time (the contact plan's);
``owner.realtime_ns()`` is unix ns, the clock of bundle expiry.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import Counter
from typing import Any, Protocol

from hilnet.agent import protocol as ev
from hilnet.agent.cla.base import ConvergenceLayer
from hilnet.agent.intake import aged
from hilnet.agent.no_route import NoRouteReports
from hilnet.agent.nodes import NodeMap, node_id
from hilnet.agent.router import Decision, Route, Router
from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import StoredBundle
from hilnet.bundle.cos import class_of_rank
from hilnet.clock import Clock
from hilnet.errors import ClaError, HilnetError, TooBigForPeerError

# The agent's logger, not a new one: the forwarder's failures were always logged as the agent's.
log = logging.getLogger("hilnet.agent")

# Re-examine the store at least this often even when nothing happened, so a
# bundle waiting for a contact whose session never came up is retried.
IDLE_RECHECK_NS = 500_000_000
# At most this many bundles (and bytes, though always one bundle) in flight to
# one peer: enough to keep a TCPCL session busy across the receiver's fsync and
# let its group commit batch puts; the byte bound caps memory for big bundles.
MAX_INFLIGHT_PER_PEER = 256
MAX_INFLIGHT_BYTES_PER_PEER = 32 << 20

# One bundle waiting for its peer: (-priority, arrival, key, plan ns it was routed at, the decision)
_Queued = tuple[int, int, str, int, Decision]


class ForwarderOwner(Protocol):
    """What a :class:`Forwarder` needs of the agent that owns it."""

    clock: Clock  # the agent's monotonic clock
    counters: Counter[str]  # the agent's counters, reported by status

    def emit(self, cls: type[ev.Event], **fields: Any) -> None:
        """Report event ``cls`` with ``fields``, stamped with the agent's time and name."""
        ...

    def plan_now(self) -> int:
        """Plan time now, ns."""
        ...

    def realtime_ns(self) -> int:
        """Unix time now, ns: the clock of bundle expiry."""
        ...

    def peer_ready(self, peer: str) -> bool:
        """Whether a CLA has a session up to node id ``peer``."""
        ...

    def cla_for(self, peer: str) -> ConvergenceLayer | None:
        """The CLA with a session to node id ``peer``, or None."""
        ...

    def deliver_local(self, sb: StoredBundle) -> None:
        """``sb``, for this node, is ready: deliver it or hold it."""
        ...


class Forwarder:
    """Routes, queues and sends one agent's stored bundles. Use from one asyncio loop."""

    def __init__(
        self,
        owner: ForwarderOwner,
        *,
        store: BundleStore,
        router: Router,
        nodes: NodeMap,
        local_eid: str,
        max_bundle_size: int,
    ):
        """``nodes`` maps between node EIDs and the names the ``router`` plans with;
        bundles for node id ``local_eid`` go back to ``owner``; ``max_bundle_size`` bytes."""
        self.owner = owner
        self.store = store
        self.router = router
        self._nodes = nodes
        self._local_eid = local_eid
        self._max_bundle_size = max_bundle_size
        self.inflight: dict[str, str] = {}  # bundle key -> peer
        self._bookings: dict[str, tuple[Route, int, int]] = {}  # bundle key -> (route, size, class) booked
        # The forwarder's view of the store, so that a pass looks only at what changed
        # (listing the store on every wake made forwarding O(n^2) in stored bundles).
        self._index: dict[str, StoredBundle] = {}  # every stored bundle not being delivered
        self._ready: dict[str, None] = {}  # keys to route on the next pass
        self._waiting: dict[str, None] = {}  # keys with no usable route now
        self._recheck_at = 0  # plan ns at which waiting keys are routed again
        self._held: dict[str, None] = {}  # local bundles without a subscriber yet
        self._queued: dict[str, list[_Queued]] = {}  # peer -> heap of (-priority, arrival, key, plan ns, decision)
        self._peer_load: dict[str, list[int]] = {}  # peer -> [bundles, bytes] in flight
        self._expiry: list[tuple[int, str]] = []  # heap of (expires_at_ns, key)
        self._wake = asyncio.Event()
        self._no_route = NoRouteReports(owner.emit, owner.peer_ready, planned=bool(router.contacts))
        self._task: asyncio.Task | None = None
        self._sends: set[asyncio.Task] = set()
        self._too_big: dict[str, str] = {}  # bundle key -> the peer that last said it is too big for it

    # -- what the agent tells it ----------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forwarder(), name="forwarder")

    async def stop(self) -> None:
        """Stop the task and cancel sends in flight; their bundles stay stored."""
        if self._task:
            self._task.cancel()
        for t in list(self._sends):
            t.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._sends] if t), return_exceptions=True)

    def wake(self) -> None:
        """Run a pass soon: something the forwarder looks at changed."""
        self._wake.set()

    def track(self, sb: StoredBundle, route: bool = True) -> None:
        """Let the forwarder know ``sb`` is in the store.

        ``route=False`` when the agent delivers it locally at once, so no pass picks it up.
        """
        self._index[sb.key] = sb
        if route:
            self._ready[sb.key] = None
        else:
            self._ready.pop(sb.key, None)  # nor a stale entry from an earlier copy
        heapq.heappush(self._expiry, (sb.expires_at_ns, sb.key))

    def tracked(self, key: str) -> StoredBundle | None:
        """The stored bundle ``key`` if the forwarder has it (not delivered, acked or expired)."""
        return self._index.get(key)

    def forget(self, key: str) -> None:
        """Stop handling ``key``: the agent is delivering it."""
        self._index.pop(key, None)

    def hold(self, key: str) -> None:
        """Keep local bundle ``key`` until an application subscribes (:meth:`release_held`)."""
        self._held[key] = None

    def release_held(self) -> None:
        """A subscriber came: offer every held bundle for delivery on the next pass."""
        self._ready.update(self._held)
        self._held.clear()
        self._wake.set()

    def recheck_now(self) -> None:
        """A session changed: waiting bundles may have a way out now."""
        self._recheck_at = 0
        self._wake.set()

    # -- the task ---------------------------------------------------------------

    async def _forwarder(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait_ns = self._forward_pass()
            except Exception as e:  # keep forwarding whatever one bundle did
                log.exception("forwarder pass failed")
                self.owner.emit(ev.Log, level="error", message=f"forwarder: {type(e).__name__}: {e}")
                wait_ns = IDLE_RECHECK_NS
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands as the
            # event is set, and this loop then outlived stop(), which hung waiting for it.
            try:
                async with asyncio.timeout(max(wait_ns, 1_000_000) / 1e9):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _expire(self, now_unix: int) -> None:
        if not self._expiry or self._expiry[0][0] > now_unix:
            return
        while self._expiry and self._expiry[0][0] <= now_unix:
            _, key = heapq.heappop(self._expiry)
            sb = self._index.get(key)
            if sb is not None and sb.expires_at_ns <= now_unix:  # not a later copy of the key
                self._drop_expired(key)  # at once: this pass must not route it
        # The deletion commits on the store's writer, off the loop; the events follow once it is durable.
        self.store.expire_async(now_unix).add_done_callback(self._expired)

    def _expired(self, deleted: asyncio.Future[list[StoredBundle]]) -> None:
        if deleted.exception() is not None:
            self.owner.emit(ev.Log, level="error", message=f"expiring bundles: {deleted.exception()}")
            return
        for sb in deleted.result():
            self._drop_expired(sb.key)
            self.owner.emit(ev.Expired, bundle=sb.key)

    def _drop_expired(self, key: str) -> None:
        self._no_route.routed(key)
        self._index.pop(key, None)
        self._too_big.pop(key, None)
        self._held.pop(key, None)
        self._unbook(key)

    def _forward_pass(self) -> int:
        """Route what changed, start every send that can start now; returns ns until the next look.

        Cost per pass is in the bundles that became ready (new, failed, or waiting
        for a route whose time came), not in everything stored.
        """
        now_unix = self.owner.realtime_ns()
        self._expire(now_unix)
        plan_now = self.owner.plan_now()
        if self._waiting and plan_now >= self._recheck_at:
            self._ready.update(self._waiting)
            self._waiting.clear()
        if not self._waiting:  # else keep the due time: busy passes must not postpone it
            self._recheck_at = plan_now + IDLE_RECHECK_NS
        if self._ready:
            self._route_ready(plan_now, now_unix)
        for peer, q in self._queued.items():
            if q:
                self._dispatch(peer, q, plan_now, now_unix)
        wait = self._recheck_at - plan_now if self._waiting else IDLE_RECHECK_NS
        if self._expiry:
            wait = min(wait, max(0, self._expiry[0][0] - now_unix))
        return max(0, wait)

    # -- routing ------------------------------------------------------------------

    def _route(self, sb: StoredBundle, plan_now: int, now_unix: int) -> Decision:
        """Route ``sb`` afresh and book the contacts of its route.

        Booking at routing time, not at send time, is what lets the bundles routed
        in one pass see each other: two 100 KiB images routed together used to book
        one contact twice over, and the tweet behind them was pushed to the next
        window. A bundle's previous booking is released first.
        """
        self._unbook(sb.key)
        expires_plan = plan_now + (sb.expires_at_ns - now_unix)
        klass = int(class_of_rank(sb.priority))
        dest = self._nodes.name_or_eid(sb.destination)
        decision = self.router.route(dest, plan_now, sb.size, expires_plan, priority=klass)
        if decision.route is not None:
            self.router.book(decision.route, sb.size, klass)
            self._bookings[sb.key] = (decision.route, sb.size, klass)
        return decision

    def _unbook(self, key: str) -> None:
        booking = self._bookings.pop(key, None)
        if booking is not None:
            self.router.release(*booking)

    def _route_ready(self, plan_now: int, now_unix: int) -> None:
        index = self._index
        keys = [k for k in self._ready if k in index and k not in self.inflight]
        self._ready.clear()
        keys.sort(key=lambda k: (-index[k].priority, index[k].arrival))
        for key in keys:
            sb = index[key]
            if node_id(sb.destination) == self._local_eid:
                self.owner.deliver_local(sb)
                continue
            decision = self._route(sb, plan_now, now_unix)
            if decision.next_hop is None:
                self._no_route.unrouted(key, sb.destination, decision.reason)
                change = self.router.next_change_ns(plan_now)
                if change is not None:
                    self._recheck_at = min(self._recheck_at, max(plan_now, change))
                self._waiting[key] = None
                continue
            self._no_route.routed(key)
            if decision.send_at_ns is not None and decision.send_at_ns > plan_now:
                self._recheck_at = min(self._recheck_at, decision.send_at_ns)
                self._waiting[key] = None
                continue
            peer = self._nodes.eid_or_name(decision.next_hop)
            if not self.owner.peer_ready(peer):
                self._waiting[key] = None  # the plan says up, no session yet: wait for session-up
                continue
            heapq.heappush(self._queued.setdefault(peer, []), (-sb.priority, sb.arrival, key, plan_now, decision))

    # -- sending ------------------------------------------------------------------

    def _dispatch(self, peer: str, q: list[_Queued], plan_now: int, now_unix: int) -> None:
        """Start sends to ``peer`` from its queue while it has room in flight."""
        load = self._peer_load.setdefault(peer, [0, 0])
        cla = self.owner.cla_for(peer)
        while q and load[0] < MAX_INFLIGHT_PER_PEER and (load[0] == 0 or load[1] < MAX_INFLIGHT_BYTES_PER_PEER):
            _, _, key, decided_at, decision = heapq.heappop(q)
            sb = self._index.get(key)
            if sb is None or key in self.inflight:
                continue
            if decided_at != plan_now:  # routed on an earlier pass: still the way to go?
                decision = self._route(sb, plan_now, now_unix)
                if (
                    decision.next_hop is None
                    or self._nodes.eid_or_name(decision.next_hop) != peer
                    or (decision.send_at_ns is not None and decision.send_at_ns > plan_now)
                ):
                    self._ready[key] = None
                    self._wake.set()
                    continue
            if cla is None:
                self._waiting[key] = None
                continue
            load[0] += 1
            load[1] += sb.size
            self.inflight[key] = peer
            task = asyncio.get_running_loop().create_task(self._send(cla, peer, sb))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _release_slot(self, peer: str, size: int) -> None:
        load = self._peer_load[peer]
        load[0] -= 1
        load[1] -= size
        self._wake.set()

    async def _send(self, cla: ConvergenceLayer, peer: str, sb: StoredBundle) -> None:
        key = sb.key
        acked = False
        slot = True
        try:
            data = self.store.get(key)
            if data is None:
                return
            if sb.meta.get("age_ms") is not None:
                held_ms = max(0, self.owner.clock.now_ns() - sb.stored_at_ns) // 1_000_000  # the time spent here
                data = aged(data, int(sb.meta["age_ms"]) + held_ms, self._max_bundle_size)
            self.owner.emit(ev.Forwarded, bundle=key, to=peer, cla=cla.name, size=len(data))
            try:
                await cla.send(peer, data, rank=sb.priority)
            except (TimeoutError, ClaError, OSError) as e:
                self._not_sent(key, peer, e)
                return
            # The next hop holds it durably (or, without acks, has it sent). Deletes are batched
            # (one fsync for many): a crash first only means a re-send that the next hop drops as a
            # duplicate. Until then the key stays in inflight, so that it is not sent again from here.
            self._release_slot(peer, sb.size)
            slot = False
            self._bookings.pop(key, None)  # the volume it booked is used: keep it booked
            acks = cla.acknowledges
            gone = await self.store.delete_async(key, f"acked by {peer}" if acks else f"sent to {peer}, unacknowledged")
            acked = True
            self._no_route.routed(key)
            self._index.pop(key, None)
            self._too_big.pop(key, None)
            if gone:
                event, who = (ev.Acked, "by") if acks else (ev.Sent, "to")
                self.owner.emit(event, bundle=key, cla=cla.name, **{who: peer})
        except asyncio.CancelledError:
            raise
        except HilnetError as e:
            self.owner.emit(ev.Log, level="warning", message=f"sending {key} to {peer} failed: {e}")
        finally:
            self.inflight.pop(key, None)
            if slot:
                self._release_slot(peer, sb.size)
            if not acked and key in self._index and key not in self._waiting:
                self._ready[key] = None  # route it again, maybe another way
            self._wake.set()

    def _not_sent(self, key: str, peer: str, e: Exception) -> None:
        """The send of ``key`` to ``peer`` failed: the bundle stays, to be routed again."""
        self._unbook(key)  # its volume is free again for the next routing
        # Retried at the next recheck or session change, not at once: a full peer got it ~30000 times a second.
        self._waiting[key] = None
        if isinstance(e, TooBigForPeerError):  # the peer said its limit: say it once per bundle and peer
            if self._too_big.get(key) != peer:
                self._too_big[key] = peer
                self.owner.emit(ev.Refused, bundle=key, peer=peer, reason=f"not sent to {peer}: {e}")
            return
        self.owner.counters["send-failed"] += 1
        message = f"sending {key} to {peer} failed: {str(e) or type(e).__name__}"
        self.owner.emit(ev.Log, level="warning", message=message)
