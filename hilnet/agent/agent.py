"""The node agent: store, route, forward, deliver — and say so in events.

One :class:`Agent` runs one node. Convergence layers hand it bundles through
:meth:`Agent.bundle_received` (the :class:`~hilnet.agent.cla.base.BundleSink`
contract); local applications through :meth:`Agent.inject` and
:meth:`Agent.submit`. Every step becomes an event dict passed to ``emit``.

The invariants the tests hold it to:

- A bundle leaves the store only when delivered locally, acknowledged by the
  next hop (the CLA's ``send`` returned, which it does only after the peer
  committed it), or expired; each removal is a journal row and an event.
- The application sees a bundle id at most once: delivered ids are durable in
  the store's deletion journal before the ``delivered`` event, and a bundle
  that arrives again is acknowledged and counted as a duplicate.
- A full store raises StoreFullError out of ``bundle_received``, so the CLA
  refuses the transfer and the sender keeps its copy.

Time: ``clock`` is the agent's monotonic clock. Contact plans are in *plan
time*, ns since ``epoch_ns`` of that clock (the controller sets it to the
scenario start). Bundle creation and expiry use DTN time from ``realtime``.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hilnet.agent import control as ev
from hilnet.agent.nodes import NodeMap, node_id
from hilnet.agent.payload import payload_for
from hilnet.agent.router import Router
from hilnet.agent.deleter import BatchDeleter
from hilnet.agent.store import BundleStore, GroupCommitter, StoredBundle
from hilnet.bundle.blocks import (
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    PrimaryBlock,
    bundle_age_ms,
    set_bundle_age,
    dtn_ms_from_unix_ns,
    hop_count,
    set_hop_count,
    set_previous_node,
    unix_ns_from_dtn_ms,
)
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.eid import parse_eid
from hilnet.clock import Clock, MonotonicClock
from hilnet.errors import (
    AgentError,
    BundleDecodeError,
    ClaError,
    DuplicateBundleError,
    HilnetError,
    InputError,
    StoreFullError,
)
from hilnet.scenario.contact import Contact

log = logging.getLogger("hilnet.agent")

DEFAULT_HOP_LIMIT = 32
# Re-examine the store at least this often even when nothing happened, so a
# bundle waiting for a contact whose session never came up is retried.
IDLE_RECHECK_NS = 500_000_000
# At most this many bundles (and bytes, though always one bundle) in flight to
# one peer: enough to keep a TCPCL session busy across the receiver's fsync and
# let its group commit batch puts; the byte bound caps memory for big bundles.
MAX_INFLIGHT_PER_PEER = 256
MAX_INFLIGHT_BYTES_PER_PEER = 32 << 20
LOCAL = "local"  # next_hop marker of a bundle held for a local application


def bundle_key(bid: BundleId) -> str:
    """The text form of a bundle id used in the store and in events.

    ``ipn:1.0/<creation_ms>/<seq>``, plus ``/<offset>/<length>`` for a fragment.
    """
    key = f"{bid.source}/{bid.creation_ms}/{bid.sequence}"
    if bid.fragment_offset is not None:
        key += f"/{bid.fragment_offset}/{bid.fragment_length}"
    return key


@dataclass(frozen=True)
class AgentConfig:
    """What ``configure`` tells an agent. Times ns; sizes bytes."""

    node: str
    eid: str
    store_path: str
    quota_bytes: int | None = None
    quota_bundles: int | None = None
    clas: tuple[Mapping[str, Any], ...] = ()
    contacts: tuple[Contact, ...] = ()
    nodes: Mapping[str, str] = field(default_factory=dict)  # name -> eid
    routes: Mapping[str, str] = field(default_factory=dict)  # dest eid or "*" -> next hop eid
    epoch_ns: int | None = None  # agent clock reading at plan time 0; None = now
    hop_limit: int = DEFAULT_HOP_LIMIT
    max_bundle_size: int = 64 * 1024 * 1024


class Agent:
    """One node's bundle agent. Use from one asyncio loop."""

    def __init__(self, emit: Callable[[dict], None], clock: Clock | None = None,
                 realtime_ns: Callable[[], int] = time.time_ns):
        self.clock = clock or MonotonicClock()
        self.realtime_ns = realtime_ns
        self._emit = emit
        self.config: AgentConfig | None = None
        self.store: BundleStore | None = None
        self.committer: GroupCommitter | None = None
        self.router: Router | None = None
        self.nodes = NodeMap()
        self.clas: list[Any] = []
        self.counters: Counter = Counter()
        self._peers: dict[str, set[str]] = {}  # peer node id -> names of CLAs with a session
        self._inflight: dict[str, str] = {}  # bundle key -> peer
        self._bookings: dict[str, tuple] = {}  # bundle key -> (route, size) booked in the router
        self._delivered: set[str] = set()
        # The forwarder's view of the store, so that a pass looks only at what changed
        # (listing the store on every wake made forwarding O(n^2) in stored bundles).
        self._index: dict[str, StoredBundle] = {}  # every stored bundle not being delivered
        self._ready: dict[str, None] = {}  # keys to route on the next pass
        self._waiting: dict[str, None] = {}  # keys with no usable route now
        self._recheck_at = 0  # plan ns at which waiting keys are routed again
        self._held: dict[str, None] = {}  # local bundles without a subscriber yet
        self._queued: dict[str, list] = {}  # peer -> heap of (-priority, arrival, key, plan ns, decision)
        self._peer_load: dict[str, list[int]] = {}  # peer -> [bundles, bytes] in flight
        self._expiry: list[tuple[int, str]] = []  # heap of (expires_at_ns, key)
        self._deleter: BatchDeleter | None = None
        self._subscribers: dict[str, list[Callable[[str, bytes], None]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._sends: set[asyncio.Task] = set()
        self._last_ms = 0
        self._seq = 0
        self.eid = ""
        self.node = ""

    # -- events ----------------------------------------------------------------

    def emit(self, cls: type[ev.Event], **fields: Any) -> None:
        """Build event ``cls`` stamped with this agent's clock and name, and pass it on."""
        self._emit(cls(t_ns=self.clock.now_ns(), node=self.node or None, **fields))

    # -- lifecycle ---------------------------------------------------------------

    async def configure(self, cfg: AgentConfig) -> None:
        """Open the store, start the CLAs and the forwarder. Once per agent."""
        if self.config is not None:
            raise AgentError("this agent is configured already; start a new one to change node")
        self.config = cfg
        self.node = cfg.node
        self.eid = str(parse_eid(node_id(cfg.eid)))
        self.nodes = NodeMap(dict(cfg.nodes) or {cfg.node: self.eid})
        if cfg.epoch_ns is None:
            self.config = cfg = _replace(cfg, epoch_ns=self.clock.now_ns())
        os.makedirs(os.path.dirname(os.path.abspath(cfg.store_path)), exist_ok=True)
        self.store = BundleStore(cfg.store_path, cfg.quota_bytes, cfg.quota_bundles, clock=self.clock)
        self.committer = GroupCommitter(self.store)
        self._deleter = BatchDeleter(self.store, asyncio.get_running_loop())
        for _, d in self.store.deletions():
            if d.reason == "delivered":
                self._delivered.add(d.key)
        for sb in self.store.list(order="arrival"):
            self._track(sb)
        routes = {self._name(k) if k != "*" else "*": self._name(v) for k, v in cfg.routes.items()}
        self.router = Router(self.node, cfg.contacts, routes)
        from hilnet.agent.cla import build_cla  # lazy: each CLA pulls its own imports

        for spec in cfg.clas:
            cla = build_cla(spec, node_id=self.eid, clock=self.clock)
            await cla.start(self)
            self.clas.append(cla)
        self._task = asyncio.get_running_loop().create_task(self._forwarder(), name="forwarder")

    async def stop(self) -> None:
        """Stop forwarding, close sessions and the store. Stored bundles stay stored."""
        if self._task:
            self._task.cancel()
        for t in list(self._sends):
            t.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._sends] if t), return_exceptions=True)
        for cla in self.clas:
            try:
                await cla.stop()
            except Exception as e:  # a CLA failing to close must not keep the store open
                log.warning("stopping %s: %s", getattr(cla, "name", cla), e)
        if self._deleter:
            self._deleter.close()  # commits the deletions already queued
        if self.committer:
            self.committer.close()
        if self.store:
            self.store.close()

    # -- time -------------------------------------------------------------------

    def plan_now(self) -> int:
        assert self.config is not None and self.config.epoch_ns is not None
        return self.clock.now_ns() - self.config.epoch_ns

    def _plan_time_of_unix(self, unix_ns: int) -> int:
        return self.plan_now() + (unix_ns - self.realtime_ns())

    # -- names ------------------------------------------------------------------

    def _name(self, eid: str) -> str:
        return self.nodes.name_or_eid(eid)

    def _eid_of(self, name: str) -> str:
        return self.nodes.eid_of(name) if name in self.nodes else name

    # -- local applications ------------------------------------------------------

    def _require_configured(self) -> BundleStore:
        if self.store is None:
            raise AgentError("the agent is not configured yet (send configure first)")
        return self.store

    def _next_creation(self) -> tuple[int, int]:
        ms = dtn_ms_from_unix_ns(self.realtime_ns())
        if ms <= self._last_ms:
            ms = self._last_ms  # same millisecond (or a clock step back): bump the sequence
            self._seq += 1
        else:
            self._seq = 0
        self._last_ms = ms
        return ms, self._seq

    async def submit(self, dest: str, payload: bytes, lifetime_ns: int, *, priority: int = 1,
                     source: str | None = None, tag: str | None = None) -> str:
        """Create a bundle from a local application and store it; returns its key."""
        store = self._require_configured()
        dest_eid = parse_eid(dest)
        src = parse_eid(source or self.eid)
        creation_ms, seq = self._next_creation()
        lifetime_ms = max(1, lifetime_ns // 1_000_000)
        primary = PrimaryBlock(destination=dest_eid, source=src, report_to=src,
                               creation_ms=creation_ms, sequence=seq, lifetime_ms=lifetime_ms,
                               flags=BundleFlag.NONE)
        blocks = (CanonicalBlock(BlockType.PAYLOAD, 1, payload),)
        bundle = set_hop_count(Bundle(primary, blocks), self.config.hop_limit, 0)
        data = encode_bundle(bundle)
        key = bundle_key(bundle.id)
        try:
            sb = await self.committer.put_async(
                key, data, source=str(src), destination=str(dest_eid), priority=priority,
                expires_at_ns=unix_ns_from_dtn_ms(primary.expires_ms), meta={"tag": tag} if tag else None)
        except StoreFullError as e:
            self.emit(ev.Refused, bundle=key, tag=tag, reason=str(e))
            raise
        self._track(sb)
        self.emit(ev.Received, bundle=key, source=str(src), dest=str(dest_eid), size=len(payload), tag=tag)
        self.emit(ev.Stored, bundle=key, size=len(data), store_bundles=store.count(),
                  store_bytes=store.bytes_used(), tag=tag)
        await self._after_store(key, bundle, data)
        return key

    async def inject(self, dest: str, size: int, seed: int, lifetime_ns: int, *,
                     priority: int = 1, tag: str | None = None) -> str:
        """Like :meth:`submit` with the deterministic payload ``payload_for(seed, size)``."""
        return await self.submit(dest, payload_for(seed, size), lifetime_ns, priority=priority, tag=tag)

    def subscribe(self, endpoint: str, deliver: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Hand bundles for ``endpoint`` to ``deliver(key, payload)``; returns an unsubscribe."""
        ep = str(parse_eid(endpoint))
        self._subscribers.setdefault(ep, []).append(deliver)
        self._ready.update(self._held)  # held bundles for it go out on the next forwarder pass
        self._held.clear()
        self._wake.set()

        def unsubscribe() -> None:
            subs = self._subscribers.get(ep, [])
            if deliver in subs:
                subs.remove(deliver)

        return unsubscribe

    # -- BundleSink ---------------------------------------------------------------

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        store = self._require_configured()
        try:
            bundle = decode_bundle(data, self.config.max_bundle_size)
        except BundleDecodeError as e:
            # The sender's copy is as broken as this one: acknowledge and drop, counted.
            self.counters["rejected:" + type(e).__name__] += 1
            self.emit(ev.Rejected, cla=cla, peer=peer, reason=str(e))
            return
        key = bundle_key(bundle.id)
        p = bundle.primary
        self.emit(ev.Received, bundle=key, source=str(p.source), dest=str(p.destination),
                  size=len(data), cla=cla, peer=peer)
        try:
            node_id(str(p.destination))
        except InputError:
            # dtn:none has no members: no node can ever deliver it, and storing it
            # would leave a bundle the router cannot place (it used to stop every pass).
            self.counters["dropped:no-destination-node"] += 1
            self.emit(ev.Dropped, bundle=key, reason=f"destination {p.destination} names no node")
            return
        if key in self._delivered or key in self._index:
            self.counters["duplicate"] += 1
            self.emit(ev.Dropped, bundle=key, reason=f"duplicate from {peer}")
            return
        expires_unix = self._expiry_of(bundle)
        if expires_unix <= self.realtime_ns():
            self.emit(ev.Expired, bundle=key)
            return
        hc = hop_count(bundle)
        if hc is not None:
            if hc.count + 1 > hc.limit:
                self.emit(ev.Dropped, bundle=key, reason=f"hop limit {hc.limit} reached")
                return
            bundle = set_hop_count(bundle, hc.limit, hc.count + 1)
        bundle = set_previous_node(bundle, parse_eid(self.eid))
        data = encode_bundle(bundle)
        try:
            age_ms = bundle_age_ms(bundle)
        except BundleDecodeError:
            age_ms = None
        try:
            sb = await self.committer.put_async(
                key, data, source=str(p.source), destination=str(p.destination),
                priority=_priority(p), expires_at_ns=expires_unix,
                # the age at arrival: each send adds the time spent here (RFC 9171 5.4 step 4)
                meta={"age_ms": age_ms} if age_ms is not None else None)
        except DuplicateBundleError:
            self.emit(ev.Dropped, bundle=key, reason=f"duplicate from {peer}")
            return
        except StoreFullError as e:
            self.emit(ev.Refused, bundle=key, peer=peer, reason=str(e))
            raise
        self._track(sb)
        self.emit(ev.Stored, bundle=key, size=len(data), store_bundles=store.count(),
                  store_bytes=store.bytes_used())
        await self._after_store(key, bundle, data)

    def _expiry_of(self, bundle: Bundle) -> int:
        """When ``bundle`` expires, unix ns.

        A source without a clock sets creation time 0 and says in the Bundle Age
        block how much of the lifetime is used (RFC 9171 4.2.7); reading its
        expiry as DTN time 0 + lifetime expired it at once on arrival.
        """
        p = bundle.primary
        if p.creation_ms:
            return unix_ns_from_dtn_ms(p.expires_ms)
        try:
            age_ms = bundle_age_ms(bundle) or 0
        except BundleDecodeError:
            age_ms = p.lifetime_ms  # an unreadable age: treat the lifetime as spent
        return self.realtime_ns() + (p.lifetime_ms - age_ms) * 1_000_000

    def session_changed(self, cla: str, peer: str, up: bool, detail: dict) -> None:
        nid = node_id(peer) if peer else peer
        clas = self._peers.setdefault(nid, set())
        (clas.add if up else clas.discard)(cla)
        if up:
            self.emit(ev.SessionUp, cla=cla, peer=nid, detail=_plain(detail))
        else:
            self.emit(ev.SessionDown, cla=cla, peer=nid, reason=str(detail.get("reason", "closed")),
                      detail=_plain(detail))
        if up and self.router:
            self.router.link_up(self.node, self._name(nid))
        self._recheck_at = 0  # waiting bundles may have a way out now
        self._wake.set()

    # -- delivery and forwarding --------------------------------------------------

    def _is_local(self, dest: str) -> bool:
        return node_id(dest) == self.eid

    def _track(self, sb: StoredBundle) -> None:
        """Let the forwarder know ``sb`` is in the store."""
        self._index[sb.key] = sb
        self._ready[sb.key] = None
        heapq.heappush(self._expiry, (sb.expires_at_ns, sb.key))

    async def _after_store(self, key: str, bundle: Bundle, data: bytes) -> None:
        dest = str(bundle.primary.destination)
        if self._is_local(dest):
            self._ready.pop(key, None)
            self._deliver_if_possible(key, dest, bundle.payload, str(bundle.primary.source))
        else:
            self._wake.set()

    def _deliver_if_possible(self, key: str, dest: str, payload: bytes, source: str) -> bool:
        subs = self._subscribers.get(dest, [])
        service0 = dest.endswith(".0") or dest.endswith("/")
        if not subs and not service0:
            self._held[key] = None
            sb = self._index.get(key)
            if sb is not None and sb.next_hop != LOCAL:
                self.store.set_next_hop(key, LOCAL)  # held until an application registers
            return False
        # Durable first, then told: a crash in between loses an event, never duplicates
        # one. The deletion is batched with others (one fsync); until it commits the
        # key is in _delivered, so a copy arriving meanwhile is a duplicate.
        self._index.pop(key, None)
        self._delivered.add(key)

        def told(ok: bool | BaseException) -> None:
            if isinstance(ok, BaseException):
                self._delivered.discard(key)
                self.emit(ev.Log, level="error", message=f"delivering {key}: {ok}")
                sb = self.store.info(key)
                if sb is not None:
                    self._track(sb)
                    self._wake.set()
                return
            self.emit(ev.Delivered, bundle=key, source=source, dest=dest, size=len(payload),
                      sha256=hashlib.sha256(payload).hexdigest())
            for deliver in list(self._subscribers.get(dest, [])):
                try:
                    deliver(key, payload)
                except Exception as e:  # one broken client must not stop delivery to others
                    log.warning("delivering %s to a client: %s", key, e)

        self._deleter.delete(key, "delivered", told)
        return True

    def _peer_ready(self, peer_eid: str) -> bool:
        return bool(self._peers.get(peer_eid))

    def _cla_for(self, peer_eid: str):
        names = self._peers.get(peer_eid, set())
        for cla in self.clas:
            if cla.name in names:
                return cla
        return None

    async def _forwarder(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait_ns = self._forward_pass()
            except Exception as e:  # keep forwarding whatever one bundle did
                log.exception("forwarder pass failed")
                self.emit(ev.Log, level="error", message=f"forwarder: {type(e).__name__}: {e}")
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
            heapq.heappop(self._expiry)
        for sb in self.store.expire(now_unix):
            self._index.pop(sb.key, None)
            self._held.pop(sb.key, None)
            self._unbook(sb.key)
            self.emit(ev.Expired, bundle=sb.key)

    def _forward_pass(self) -> int:
        """Route what changed, start every send that can start now; returns ns until the next look.

        Cost per pass is in the bundles that became ready (new, failed, or waiting
        for a route whose time came), not in everything stored.
        """
        now_unix = self.realtime_ns()
        self._expire(now_unix)
        plan_now = self.plan_now()
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

    def _route(self, sb: StoredBundle, plan_now: int, now_unix: int):
        """Route ``sb`` afresh and book the contacts of its route.

        Booking at routing time, not at send time, is what lets the bundles routed
        in one pass see each other: two 100 KiB images routed together used to book
        one contact twice over, and the tweet behind them was pushed to the next
        window. A bundle's previous booking is released first.
        """
        self._unbook(sb.key)
        expires_plan = plan_now + (sb.expires_at_ns - now_unix)
        decision = self.router.route(self._name(node_id(sb.destination)), plan_now, sb.size, expires_plan)
        if decision.route is not None:
            self.router.book(decision.route, sb.size)
            self._bookings[sb.key] = (decision.route, sb.size)
        return decision

    def _unbook(self, key: str) -> None:
        booking = self._bookings.pop(key, None)
        if booking is not None:
            self.router.release(*booking)

    def _route_ready(self, plan_now: int, now_unix: int) -> None:
        index = self._index
        keys = [k for k in self._ready if k in index and k not in self._inflight]
        self._ready.clear()
        keys.sort(key=lambda k: (-index[k].priority, index[k].arrival))
        for key in keys:
            sb = index[key]
            if self._is_local(sb.destination):
                if self._subscribers.get(sb.destination):
                    data = self.store.get(key)
                    if data is not None:
                        self._deliver_if_possible(key, sb.destination, decode_bundle(data).payload,
                                                  sb.source)
                else:
                    self._held[key] = None
                continue
            decision = self._route(sb, plan_now, now_unix)
            if decision.next_hop is None:
                change = self.router.next_change_ns(plan_now)
                if change is not None:
                    self._recheck_at = min(self._recheck_at, max(plan_now, change))
                self._waiting[key] = None
                continue
            if decision.send_at_ns is not None and decision.send_at_ns > plan_now:
                self._recheck_at = min(self._recheck_at, decision.send_at_ns)
                self._waiting[key] = None
                continue
            peer = self._eid_of(decision.next_hop)
            if not self._peer_ready(peer):
                self._waiting[key] = None  # the plan says up, no session yet: wait for session-up
                continue
            heapq.heappush(self._queued.setdefault(peer, []),
                           (-sb.priority, sb.arrival, key, plan_now, decision))

    def _dispatch(self, peer: str, q: list, plan_now: int, now_unix: int) -> None:
        """Start sends to ``peer`` from its queue while it has room in flight."""
        load = self._peer_load.setdefault(peer, [0, 0])
        cla = self._cla_for(peer)
        while q and load[0] < MAX_INFLIGHT_PER_PEER and (
                load[0] == 0 or load[1] < MAX_INFLIGHT_BYTES_PER_PEER):
            _, _, key, decided_at, decision = heapq.heappop(q)
            sb = self._index.get(key)
            if sb is None or key in self._inflight:
                continue
            if decided_at != plan_now:  # routed on an earlier pass: still the way to go?
                decision = self._route(sb, plan_now, now_unix)
                if (decision.next_hop is None or self._eid_of(decision.next_hop) != peer
                        or (decision.send_at_ns is not None and decision.send_at_ns > plan_now)):
                    self._ready[key] = None
                    self._wake.set()
                    continue
            if cla is None:
                self._waiting[key] = None
                continue
            load[0] += 1
            load[1] += sb.size
            self._inflight[key] = peer
            task = asyncio.get_running_loop().create_task(self._send(cla, peer, sb, decision))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _release_slot(self, peer: str, size: int) -> None:
        load = self._peer_load[peer]
        load[0] -= 1
        load[1] -= size
        self._wake.set()

    async def _send(self, cla, peer: str, sb: StoredBundle, decision) -> None:
        key = sb.key
        acked = False
        slot = True
        try:
            data = self.store.get(key)
            if data is None:
                return
            if sb.meta.get("age_ms") is not None:
                data = self._aged(data, int(sb.meta["age_ms"]), sb.stored_at_ns)
            self.emit(ev.Forwarded, bundle=key, to=peer, cla=cla.name, size=len(data))
            try:
                await cla.send(peer, data)
            except (ClaError, OSError, asyncio.TimeoutError) as e:
                self._unbook(key)  # its volume is free again for the next routing
                self.counters["send-failed"] += 1
                self.emit(ev.Log, level="warning",
                          message=f"sending {key} to {peer} failed: {str(e) or type(e).__name__}")
                # Retried at the next recheck (<= IDLE_RECHECK_NS) or session change, not at
                # once: a peer refusing for a full store got it again ~30000 times a second.
                self._waiting[key] = None
                return
            # The next hop holds it durably. Deletes are batched (one fsync for many):
            # a crash before the batch commits only means a re-send that the next hop
            # acknowledges and drops as a duplicate. Until then the key stays in
            # _inflight so that this agent does not send it again itself, but its
            # slot is free for the next bundle.
            self._release_slot(peer, sb.size)
            slot = False
            self._bookings.pop(key, None)  # the volume it booked is used: keep it booked
            gone = await self._deleter.delete_async(key, f"acked by {peer}")
            acked = True
            self._index.pop(key, None)
            if gone:
                self.emit(ev.Acked, bundle=key, by=peer, cla=cla.name)
        except asyncio.CancelledError:
            raise
        except HilnetError as e:
            self.emit(ev.Log, level="warning", message=f"sending {key} to {peer} failed: {e}")
        finally:
            self._inflight.pop(key, None)
            if slot:
                self._release_slot(peer, sb.size)
            if not acked and key in self._index and key not in self._waiting:
                self._ready[key] = None  # route it again, maybe another way
            self._wake.set()

    def _aged(self, data: bytes, age_at_arrival_ms: int, stored_at_ns: int) -> bytes:
        """``data`` with its Bundle Age block grown by the time the bundle spent here."""
        held_ms = max(0, self.clock.now_ns() - stored_at_ns) // 1_000_000
        return encode_bundle(set_bundle_age(decode_bundle(data, self.config.max_bundle_size),
                                            age_at_arrival_ms + held_ms))

    # -- status ------------------------------------------------------------------

    def status(self) -> dict:
        store = self._require_configured()
        return {
            "node": self.node, "eid": self.eid, "stored": store.count(), "bytes": store.bytes_used(),
            "inflight": len(self._inflight),
            "sessions": sorted(p for p, c in self._peers.items() if c),
            "counters": dict(self.counters) | {f"{c.name}:{k}": v for c in self.clas for k, v in c.stats.items()},
        }


def _priority(p: PrimaryBlock) -> int:
    return 1  # BPv7 dropped the BPv6 priority bits; extension-block priorities come later


def _plain(detail: Mapping) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in detail.items()}


def _replace(cfg: AgentConfig, **changes: Any) -> AgentConfig:
    from dataclasses import replace

    return replace(cfg, **changes)
