"""The node agent: take bundles in, store them, deliver them locally — and say so in events.

One :class:`Agent` runs one node. Convergence layers hand it bundles through
:meth:`Agent.bundle_received` (the :class:`~hilnet.agent.cla.base.BundleSink`
contract); local applications through :meth:`Agent.inject` and
:meth:`Agent.submit`. Every step becomes an event passed to ``emit``.
Routing, queueing and sending to other nodes is the job of its
:class:`~hilnet.agent.forwarder.Forwarder` (``agent.forwarder``); the agent is its
:class:`~hilnet.agent.forwarder.ForwarderOwner`. The rules a bundle passes on its
way in (keys, creation, expiry, hop count) are in :mod:`hilnet.agent.intake`.

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

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any

from hilnet.agent import protocol as ev
from hilnet.agent.cla import build_cla
from hilnet.agent.cla.base import ConvergenceLayer
from hilnet.agent.cla.limits import Resources
from hilnet.agent.config import AgentConfig
from hilnet.agent.delivery import Deliver, LocalDelivery
from hilnet.agent.forwarder import Forwarder
from hilnet.agent.intake import (
    CreationCounter,
    age_at_arrival_ms,
    arrived_copy,
    bundle_key,
    expiry_of,
    hop_limit_reached,
    new_bundle,
    store_rank,
    unknown_blocks,
)
from hilnet.agent.nodes import NodeMap, node_id
from hilnet.agent.openings import Kicks
from hilnet.agent.payload import payload_for
from hilnet.agent.router import Router
from hilnet.agent.security import accepted, load_keyring, protected
from hilnet.agent.status import status_of
from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import StoredBundle
from hilnet.bundle.blocks import Bundle, unix_ns_from_dtn_ms
from hilnet.bundle.bpsec import KeyRing, Protection, has_security_blocks
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.cos import DEFAULT_COS, ClassOfService
from hilnet.bundle.eid import parse_eid
from hilnet.clock import Clock, MonotonicClock
from hilnet.clock import realtime_ns as system_realtime_ns
from hilnet.errors import AgentError, BundleDecodeError, DuplicateBundleError, InputError, StoreFullError

log = logging.getLogger("hilnet.agent")
HELD_NS = 50 * 365 * 86_400 * 10**9  # a held agent's plan time 0 lies this far ahead until ``start``


class Agent:
    """One node's bundle agent. Use from one asyncio loop.

    ``emit`` receives every event; ``realtime_ns`` reads unix ns, the clock of
    bundle creation and expiry. Until :meth:`configure` returns, the parts it
    makes (``store``, ``router``, ``forwarder``...) do not exist; ``forwarder``
    is None until then.
    """

    store: BundleStore
    router: Router

    def __init__(
        self,
        emit: Callable[[ev.Event], None],
        clock: Clock | None = None,
        realtime_ns: Callable[[], int] = system_realtime_ns,
    ):
        self.clock: Clock = clock or MonotonicClock()
        self._realtime_ns = realtime_ns
        self._emit = emit
        self.config: AgentConfig | None = None
        self.forwarder: Forwarder | None = None
        self.nodes = NodeMap()
        self.clas: list[ConvergenceLayer] = []
        self.counters: Counter[str] = Counter()
        self._opened = contextlib.AsyncExitStack()  # what configure opened, closed by stop in reverse
        self._peers: dict[str, set[str]] = {}  # peer node id -> names of CLAs with a session
        self.delivery = LocalDelivery(self.emit)
        self._creation = CreationCounter()
        self.keys = KeyRing()
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
        if cfg.epoch_ns is None:  # held: every contact stays ahead until ``start`` sets plan time 0
            self.config = cfg = replace(cfg, epoch_ns=self.clock.now_ns() + (HELD_NS if cfg.hold else 0))
        self.keys = load_keyring(cfg.keys_path)
        os.makedirs(os.path.dirname(os.path.abspath(cfg.store_path)), exist_ok=True)
        self.store = BundleStore(cfg.store_path, cfg.quota_bytes, cfg.quota_bundles, clock=self.clock)
        self._opened.callback(self.store.close)  # commits the writes already queued (deletions of delivered bundles)
        delivered = {d.key for _, d in self.store.deletions() if d.reason == "delivered"}
        routes = {
            self.nodes.name_or_eid(k) if k != "*" else "*": self.nodes.name_or_eid(v) for k, v in cfg.routes.items()
        }
        self.router = Router(self.node, cfg.contacts, routes)
        forwarder = Forwarder(
            self,
            store=self.store,
            router=self.router,
            nodes=self.nodes,
            local_eid=self.eid,
            max_bundle_size=cfg.max_bundle_size,
        )
        for sb in self.store.list(order="arrival"):
            forwarder.track(sb)
        self.delivery.start(self.store, forwarder, delivered)
        self.forwarder = forwarder
        self.resources = res = Resources(
            cfg.limits, self.clock, on_limit=lambda hit: self.emit(ev.Limit, **asdict(hit))
        )
        for spec in cfg.clas:
            cla = build_cla(spec, node_id=self.eid, clock=self.clock, resources=res, agent=cfg)
            await cla.start(self)
            self.clas.append(cla)
            self._opened.push_async_callback(_stop_cla, cla)
        self._opened.push_async_callback(forwarder.stop)  # stopped first: no new sends while CLAs close
        forwarder.start()
        self._kicks = Kicks(self.clock, cfg, self.nodes, self.clas, self.peer_ready)
        self._opened.push_async_callback(self._kicks.stop)

    async def start_at(self, epoch_ns: int) -> None:
        """Plan time 0 is ``epoch_ns`` of the agent's clock from now on (``start``, after a held configure)."""
        self.config = cfg = replace(self._configured(), epoch_ns=epoch_ns)
        await self._kicks.restart(cfg)
        self._running().recheck_now()

    async def stop(self) -> None:
        """Stop forwarding, close sessions and the store. Stored bundles stay stored."""
        await self._opened.aclose()

    def _running(self) -> Forwarder:
        """The forwarder, which exists once configure made every part the agent needs."""
        if self.forwarder is None:
            raise AgentError("the agent is not configured yet (send configure first)")
        return self.forwarder

    def _configured(self) -> AgentConfig:
        if self.config is None:
            raise AgentError("the agent is not configured yet (send configure first)")
        return self.config

    # -- time -------------------------------------------------------------------

    def plan_now(self) -> int:
        """Plan time now, ns since ``epoch_ns`` of the agent's clock."""
        if self.config is None or self.config.epoch_ns is None:
            raise AgentError("the agent has no plan time before configure")
        return self.clock.now_ns() - self.config.epoch_ns

    def realtime_ns(self) -> int:
        """Unix time now, ns: the clock of bundle creation and expiry."""
        return self._realtime_ns()

    # -- local applications ------------------------------------------------------

    async def submit(
        self,
        dest: str,
        payload: bytes,
        lifetime_ns: int,
        *,
        cos: ClassOfService = DEFAULT_COS,
        source: str | None = None,
        tag: str | None = None,
        protection: Protection | None = None,
        hop_limit: int | None = None,
    ) -> str:
        """Create a bundle from a local application and store it; returns its key.

        ``cos`` (class and ordinal) goes into the bundle's type-193 block and orders it at every hop;
        ``protection`` adds BPSec blocks for a bundle that leaves; ``hop_limit``: its hops (None: the config's).
        """
        forwarder = self._running()
        dest_eid, src = parse_eid(dest), parse_eid(source or self.eid)
        config = self._configured()
        creation = self._creation.next(self.realtime_ns())
        hops = config.hop_limit if hop_limit is None else hop_limit
        bundle = new_bundle(src, dest_eid, payload, creation, lifetime_ns, hops, cos, config.bundle_crc)
        if not self._is_local(str(dest_eid)):
            bundle = protected(bundle, self.keys, protection)
        primary = bundle.primary
        data = encode_bundle(bundle)
        key = bundle_key(bundle.id)
        try:
            sb = await self.store.put_async(
                key,
                data,
                source=str(src),
                destination=str(dest_eid),
                priority=cos.rank,
                expires_at_ns=unix_ns_from_dtn_ms(primary.expires_ms),
                meta={"tag": tag} if tag else None,
            )
        except StoreFullError as e:
            self.emit(ev.Refused, bundle=key, tag=tag, reason=str(e))
            raise
        forwarder.track(sb, route=not self._is_local(sb.destination))
        self.emit(ev.Received, bundle=key, source=str(src), dest=str(dest_eid), size=len(payload), tag=tag)
        self._emit_stored(key, len(data), tag)
        self._after_store(key, bundle)
        return key

    async def inject(self, dest: str, size: int, seed: int, lifetime_ns: int, **kw: Any) -> str:
        """Like :meth:`submit` (same keyword arguments) with the payload ``payload_for(seed, size)``."""
        return await self.submit(dest, payload_for(seed, size), lifetime_ns, **kw)

    def subscribe(self, endpoint: str, deliver: Deliver) -> Callable[[], None]:
        """Hand bundles for ``endpoint`` to ``deliver(key, payload)``; returns an unsubscribe."""
        return self.delivery.subscribe(str(parse_eid(endpoint)), deliver)

    # -- BundleSink ---------------------------------------------------------------

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        """Take a bundle a CLA received; returns once it is stored (or refused, dropped, expired)."""
        forwarder = self._running()
        admitted = self._admit(forwarder, data, cla, peer)
        if admitted is None:
            return
        bundle, expires_unix = admitted
        key = bundle_key(bundle.id)
        p = bundle.primary
        data = encode_bundle(arrived_copy(bundle, parse_eid(self.eid)))
        age_ms = age_at_arrival_ms(bundle)
        try:
            sb = await self.store.put_async(
                key,
                data,
                source=str(p.source),
                destination=str(p.destination),
                priority=store_rank(bundle),
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
        forwarder.track(sb, route=not self._is_local(sb.destination))
        self._emit_stored(key, len(data), None)
        self._after_store(key, bundle)

    def _admit(self, forwarder: Forwarder, data: bytes, cla: str, peer: str | None) -> tuple[Bundle, int] | None:
        """The bundle in ``data`` and its expiry (unix ns) if it is to be stored here; None if not.

        Every refusal is reported in an event (and counted where it is the peer's fault).
        """
        try:
            bundle = decode_bundle(data, self._configured().max_bundle_size)
        except BundleDecodeError as e:
            # The sender's copy is as broken as this one: acknowledge and drop, counted.
            self.counters["rejected:" + type(e).__name__] += 1
            self.emit(ev.Rejected, cla=cla, peer=peer, reason=str(e))
            return None
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
            return None
        if self.delivery.was_delivered(key) or forwarder.tracked(key) is not None:
            self.counters["duplicate"] += 1
            self.emit(ev.Dropped, bundle=key, reason=f"duplicate from {peer}")
            return None
        expires_unix = expiry_of(bundle, self.realtime_ns())
        if expires_unix <= self.realtime_ns():
            self.emit(ev.Expired, bundle=key)
            return None
        reason = hop_limit_reached(bundle)
        kept, said = (None, None) if reason else unknown_blocks(bundle)
        if kept is None:
            self.emit(ev.Dropped, bundle=key, reason=reason or said)
            return None
        if said is not None:
            self.emit(ev.Log, level="info", message=f"{key}: {said}")
        if has_security_blocks(kept) and self._is_local(str(p.destination)):
            kept = accepted(kept, key, self.keys, self.emit, self.counters)  # this node is the security acceptor
        return None if kept is None else (kept, expires_unix)

    def _emit_stored(self, key: str, size: int, tag: str | None) -> None:
        store = self.store
        self.emit(
            ev.Stored, bundle=key, size=size, store_bundles=store.count(), store_bytes=store.bytes_used(), tag=tag
        )

    def session_changed(self, cla: str, peer: str, up: bool, detail: Mapping[str, Any]) -> None:
        """A CLA's session to ``peer`` came up or went down (BundleSink)."""
        nid = node_id(peer) if peer else peer
        clas = self._peers.setdefault(nid, set())
        (clas.add if up else clas.discard)(cla)
        if up:
            self.emit(ev.SessionUp, cla=cla, peer=nid, detail=_plain(detail))
        else:
            self.emit(
                ev.SessionDown, cla=cla, peer=nid, reason=str(detail.get("reason", "closed")), detail=_plain(detail)
            )
        if self.forwarder is not None:
            if up:
                self.router.link_up(self.node, self.nodes.name_or_eid(nid))
            self.forwarder.recheck_now()

    def tls_failed(self, cla: str, reason: str, peer: str | None, certified: str | None, address: str) -> None:
        self.emit(ev.TlsFailed, cla=cla, reason=reason, peer=peer, certified=certified, address=address)

    # -- local delivery -----------------------------------------------------------

    def _is_local(self, dest: str) -> bool:
        return node_id(dest) == self.eid

    def _after_store(self, key: str, bundle: Bundle) -> None:
        dest = str(bundle.primary.destination)
        if self._is_local(dest):
            # tracked with route=False: delivered (or held) here, not by a forwarder pass
            self.delivery.deliver_if_possible(key, dest, bundle.payload, str(bundle.primary.source))
        else:
            self._running().wake()

    def deliver_local(self, sb: StoredBundle) -> None:
        """The forwarder found ``sb``, for this node, ready: deliver it or hold it (ForwarderOwner)."""
        self.delivery.deliver_stored(sb)

    # -- sessions, for the forwarder (ForwarderOwner) ----------------------------------

    def peer_ready(self, peer: str) -> bool:
        """Whether a CLA has a session up to node id ``peer``."""
        return bool(self._peers.get(peer))

    def cla_for(self, peer: str) -> ConvergenceLayer | None:
        """The first CLA (in configure order) with a session to node id ``peer``, or None."""
        names = self._peers.get(peer, set())
        for cla in self.clas:
            if cla.name in names:
                return cla
        return None

    def status(self) -> dict[str, Any]:
        """The ``status`` reply: store use (bundles, bytes), sessions and counters."""
        return status_of(self, self._running(), sorted(p for p, c in self._peers.items() if c))


async def _stop_cla(cla: ConvergenceLayer) -> None:
    try:
        await cla.stop()
    except Exception as e:  # a CLA failing to close must not keep the store open
        log.warning("stopping %s: %s", cla.name, e)


def _plain(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in detail.items()}
