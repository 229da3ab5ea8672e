"""The node agent: take bundles in, store them, deliver them locally — and say so in events.

One :class:`Agent` runs one node. Convergence layers hand it bundles through
:meth:`Agent.bundle_received` (the :class:`~hilnet.agent.cla.base.BundleSink`
contract); local applications through :meth:`Agent.inject` and
:meth:`Agent.submit`. Every step becomes an event dict passed to ``emit``.
Routing, queueing and sending to other nodes is the job of its
:class:`~hilnet.agent.forwarder.Forwarder` (``agent.forwarder``).

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
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hilnet.agent import protocol as ev
from hilnet.agent.cla import build_cla
from hilnet.agent.deleter import BatchDeleter
from hilnet.agent.forwarder import (  # noqa: F401 -- re-exported: these were agent.py's names
    IDLE_RECHECK_NS,
    MAX_INFLIGHT_BYTES_PER_PEER,
    MAX_INFLIGHT_PER_PEER,
    Forwarder,
)
from hilnet.agent.group_commit import GroupCommitter
from hilnet.agent.nodes import NodeMap, node_id
from hilnet.agent.payload import payload_for
from hilnet.agent.router import Router
from hilnet.agent.store import BundleStore, StoredBundle
from hilnet.bundle.blocks import (
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    PrimaryBlock,
    bundle_age_ms,
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
    DuplicateBundleError,
    InputError,
    StoreFullError,
)
from hilnet.scenario.contact import Contact

log = logging.getLogger("hilnet.agent")

DEFAULT_HOP_LIMIT = 32
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
    clas: tuple[ev.ClaConfig, ...] = ()  # started in this order
    contacts: tuple[Contact, ...] = ()
    nodes: Mapping[str, str] = field(default_factory=dict)  # name -> eid
    routes: Mapping[str, str] = field(default_factory=dict)  # dest eid or "*" -> next hop eid
    epoch_ns: int | None = None  # agent clock reading at plan time 0; None = now
    hop_limit: int = DEFAULT_HOP_LIMIT
    max_bundle_size: int = 64 * 1024 * 1024


class Agent:
    """One node's bundle agent. Use from one asyncio loop."""

    def __init__(
        self, emit: Callable[[dict], None], clock: Clock | None = None, realtime_ns: Callable[[], int] = time.time_ns
    ):
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
        self.forwarder: Forwarder | None = None
        self._peers: dict[str, set[str]] = {}  # peer node id -> names of CLAs with a session
        self._delivered: set[str] = set()
        self._deleter: BatchDeleter | None = None
        self._subscribers: dict[str, list[Callable[[str, bytes], None]]] = {}
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
        routes = {self._name(k) if k != "*" else "*": self._name(v) for k, v in cfg.routes.items()}
        self.router = Router(self.node, cfg.contacts, routes)
        self.forwarder = Forwarder(
            store=self.store,
            router=self.router,
            deleter=self._deleter,
            emit=self.emit,
            clock=self.clock,
            counters=self.counters,
            plan_now=self.plan_now,
            realtime_ns=self.realtime_ns,
            name_of=self._name,
            eid_of=self._eid_of,
            is_local=self._is_local,
            peer_ready=self._peer_ready,
            cla_for=self._cla_for,
            deliver_local=self._deliver_stored,
            max_bundle_size=cfg.max_bundle_size,
        )
        for sb in self.store.list(order="arrival"):
            self.forwarder.track(sb)
        for spec in cfg.clas:
            cla = build_cla(spec, node_id=self.eid, clock=self.clock)
            await cla.start(self)
            self.clas.append(cla)
        self.forwarder.start()

    async def stop(self) -> None:
        """Stop forwarding, close sessions and the store. Stored bundles stay stored."""
        if self.forwarder:
            await self.forwarder.stop()
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
        if self.config is None or self.config.epoch_ns is None:
            raise AgentError("the agent has no plan time before configure")
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

    async def submit(
        self,
        dest: str,
        payload: bytes,
        lifetime_ns: int,
        *,
        priority: int = 1,
        source: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Create a bundle from a local application and store it; returns its key."""
        store = self._require_configured()
        dest_eid = parse_eid(dest)
        src = parse_eid(source or self.eid)
        creation_ms, seq = self._next_creation()
        lifetime_ms = max(1, lifetime_ns // 1_000_000)
        primary = PrimaryBlock(
            destination=dest_eid,
            source=src,
            report_to=src,
            creation_ms=creation_ms,
            sequence=seq,
            lifetime_ms=lifetime_ms,
            flags=BundleFlag.NONE,
        )
        blocks = (CanonicalBlock(BlockType.PAYLOAD, 1, payload),)
        bundle = set_hop_count(Bundle(primary, blocks), self.config.hop_limit, 0)
        data = encode_bundle(bundle)
        key = bundle_key(bundle.id)
        try:
            sb = await self.committer.put_async(
                key,
                data,
                source=str(src),
                destination=str(dest_eid),
                priority=priority,
                expires_at_ns=unix_ns_from_dtn_ms(primary.expires_ms),
                meta={"tag": tag} if tag else None,
            )
        except StoreFullError as e:
            self.emit(ev.Refused, bundle=key, tag=tag, reason=str(e))
            raise
        self.forwarder.track(sb, route=not self._is_local(sb.destination))
        self.emit(ev.Received, bundle=key, source=str(src), dest=str(dest_eid), size=len(payload), tag=tag)
        self.emit(
            ev.Stored, bundle=key, size=len(data), store_bundles=store.count(), store_bytes=store.bytes_used(), tag=tag
        )
        await self._after_store(key, bundle, data)
        return key

    async def inject(
        self, dest: str, size: int, seed: int, lifetime_ns: int, *, priority: int = 1, tag: str | None = None
    ) -> str:
        """Like :meth:`submit` with the deterministic payload ``payload_for(seed, size)``."""
        return await self.submit(dest, payload_for(seed, size), lifetime_ns, priority=priority, tag=tag)

    def subscribe(self, endpoint: str, deliver: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Hand bundles for ``endpoint`` to ``deliver(key, payload)``; returns an unsubscribe."""
        ep = str(parse_eid(endpoint))
        self._subscribers.setdefault(ep, []).append(deliver)
        if self.forwarder is not None:  # nothing is held before configure
            self.forwarder.release_held()  # held bundles for it go out on the next forwarder pass

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
        self.emit(
            ev.Received, bundle=key, source=str(p.source), dest=str(p.destination), size=len(data), cla=cla, peer=peer
        )
        try:
            node_id(str(p.destination))
        except InputError:
            # dtn:none has no members: no node can ever deliver it, and storing it
            # would leave a bundle the router cannot place (it used to stop every pass).
            self.counters["dropped:no-destination-node"] += 1
            self.emit(ev.Dropped, bundle=key, reason=f"destination {p.destination} names no node")
            return
        if key in self._delivered or self.forwarder.tracked(key) is not None:
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
                key,
                data,
                source=str(p.source),
                destination=str(p.destination),
                priority=_priority(p),
                expires_at_ns=expires_unix,
                # the age at arrival: each send adds the time spent here (RFC 9171 5.4 step 4)
                meta={"age_ms": age_ms} if age_ms is not None else None,
            )
        except DuplicateBundleError:
            self.emit(ev.Dropped, bundle=key, reason=f"duplicate from {peer}")
            return
        except StoreFullError as e:
            self.emit(ev.Refused, bundle=key, peer=peer, reason=str(e))
            raise
        self.forwarder.track(sb, route=not self._is_local(sb.destination))
        self.emit(ev.Stored, bundle=key, size=len(data), store_bundles=store.count(), store_bytes=store.bytes_used())
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
            self.emit(
                ev.SessionDown, cla=cla, peer=nid, reason=str(detail.get("reason", "closed")), detail=_plain(detail)
            )
        if up and self.router:
            self.router.link_up(self.node, self._name(nid))
        if self.forwarder is not None:
            self.forwarder.recheck_now()

    # -- local delivery -----------------------------------------------------------

    def _is_local(self, dest: str) -> bool:
        return node_id(dest) == self.eid

    async def _after_store(self, key: str, bundle: Bundle, data: bytes) -> None:
        dest = str(bundle.primary.destination)
        if self._is_local(dest):
            # tracked with route=False: delivered (or held) here, not by a forwarder pass
            self._deliver_if_possible(key, dest, bundle.payload, str(bundle.primary.source))
        else:
            self.forwarder.wake()

    def _deliver_stored(self, sb: StoredBundle) -> None:
        """The forwarder found ``sb``, for this node, ready: deliver it or hold it."""
        if self._subscribers.get(sb.destination):
            data = self.store.get(sb.key)
            if data is not None:
                self._deliver_if_possible(sb.key, sb.destination, decode_bundle(data).payload, sb.source)
        else:
            self.forwarder.hold(sb.key)

    def _deliver_if_possible(self, key: str, dest: str, payload: bytes, source: str) -> bool:
        subs = self._subscribers.get(dest, [])
        service0 = dest.endswith(".0") or dest.endswith("/")
        if not subs and not service0:
            self.forwarder.hold(key)
            sb = self.forwarder.tracked(key)
            if sb is not None and sb.next_hop != LOCAL:
                self.store.set_next_hop(key, LOCAL)  # held until an application registers
            return False
        # Durable first, then told: a crash in between loses an event, never duplicates
        # one. The deletion is batched with others (one fsync); until it commits the
        # key is in _delivered, so a copy arriving meanwhile is a duplicate.
        self.forwarder.forget(key)
        self._delivered.add(key)

        def told(ok: bool | BaseException) -> None:
            if isinstance(ok, BaseException):
                self._delivered.discard(key)
                self.emit(ev.Log, level="error", message=f"delivering {key}: {ok}")
                sb = self.store.info(key)
                if sb is not None:
                    self.forwarder.track(sb)
                    self.forwarder.wake()
                return
            self.emit(
                ev.Delivered,
                bundle=key,
                source=source,
                dest=dest,
                size=len(payload),
                sha256=hashlib.sha256(payload).hexdigest(),
            )
            for deliver in list(self._subscribers.get(dest, [])):
                try:
                    deliver(key, payload)
                except Exception as e:  # one broken client must not stop delivery to others
                    log.warning("delivering %s to a client: %s", key, e)

        self._deleter.delete(key, "delivered", told)
        return True

    # -- sessions, for the forwarder ------------------------------------------------

    def _peer_ready(self, peer_eid: str) -> bool:
        return bool(self._peers.get(peer_eid))

    def _cla_for(self, peer_eid: str):
        names = self._peers.get(peer_eid, set())
        for cla in self.clas:
            if cla.name in names:
                return cla
        return None

    # -- status ------------------------------------------------------------------

    def status(self) -> dict:
        store = self._require_configured()
        return {
            "node": self.node,
            "eid": self.eid,
            "stored": store.count(),
            "bytes": store.bytes_used(),
            "inflight": len(self.forwarder.inflight),
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
