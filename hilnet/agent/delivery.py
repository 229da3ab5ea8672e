"""Local delivery: bundles for this node handed to its applications, each at most once.

A bundle for this node is delivered when an application subscribed to its
endpoint (or it is for the node's administrative endpoint, service 0), else
held in the store until one subscribes. Delivery is durable before it is
told: the deletion journal records the key as delivered, then the
``delivered`` event and the subscribers follow. A crash in between loses an
event, never duplicates one, and the journal's delivered keys survive a
restart so that a copy arriving later is a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from hilnet.agent import protocol as ev
from hilnet.agent.forwarder import Forwarder
from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import StoredBundle
from hilnet.bundle.codec import decode_bundle

log = logging.getLogger("hilnet.agent")

LOCAL = "local"  # next_hop marker of a bundle held for a local application

#: An application: called ``deliver(key, payload)`` for each bundle delivered to it.
Deliver = Callable[[str, bytes], None]


def is_admin_endpoint(dest: str) -> bool:
    """Whether ``dest`` (EID text) is a node's administrative endpoint (``ipn:N.0``, ``dtn://node/``).

    Bundles for it are delivered at once, with or without a subscriber.
    """
    return dest.endswith(".0") or dest.endswith("/")


class LocalDelivery:
    """Delivers one agent's bundles for its own node, or holds them. Use from one asyncio loop.

    Applications may :meth:`subscribe` from the start; bundles are delivered
    once :meth:`start` gave the store and the forwarder.
    ``emit(cls, **fields)`` reports an event.
    """

    store: BundleStore
    _forwarder: Forwarder

    def __init__(self, emit: Callable[..., None]):
        self._emit = emit
        self._subscribers: dict[str, list[Deliver]] = {}  # endpoint -> applications
        self._delivered: set[str] = set()
        self._started = False

    def start(self, store: BundleStore, forwarder: Forwarder, delivered: set[str]) -> None:
        """Deliver through these; ``delivered`` are the keys the store's journal says were delivered."""
        self.store = store
        self._forwarder = forwarder
        self._delivered = delivered
        self._started = True

    def subscribe(self, endpoint: str, deliver: Deliver) -> Callable[[], None]:
        """Hand bundles for ``endpoint`` (an EID in text) to ``deliver(key, payload)``; returns an unsubscribe."""
        subs = self._subscribers.setdefault(endpoint, [])
        subs.append(deliver)
        if self._started:  # nothing is held before start
            self._forwarder.release_held()  # held bundles for it go out on the next forwarder pass

        def unsubscribe() -> None:
            if deliver in subs:
                subs.remove(deliver)

        return unsubscribe

    def was_delivered(self, key: str) -> bool:
        """Whether ``key`` was delivered here (or its delivery is being committed)."""
        return key in self._delivered

    def deliver_stored(self, sb: StoredBundle) -> None:
        """The forwarder found ``sb``, for this node, ready: deliver it or hold it."""
        if self._subscribers.get(sb.destination) or is_admin_endpoint(sb.destination):
            # Service 0 needs no subscriber: a bundle for it that a crash left stored
            # (committed, its delivery not yet) is delivered on restart, not held forever.
            data = self.store.get(sb.key)
            if data is not None:
                self.deliver_if_possible(sb.key, sb.destination, decode_bundle(data).payload, sb.source)
        else:
            self._forwarder.hold(sb.key)

    def deliver_if_possible(self, key: str, dest: str, payload: bytes, source: str) -> bool:
        """Deliver the stored bundle ``key`` for ``dest`` now, or hold it; True when delivered."""
        forwarder = self._forwarder
        subs = self._subscribers.get(dest, [])
        if not subs and not is_admin_endpoint(dest):
            forwarder.hold(key)
            sb = forwarder.tracked(key)
            if sb is not None and sb.next_hop != LOCAL:
                self._mark_held(key)
            return False
        # Durable first, then told: a crash in between loses an event, never duplicates
        # one. The deletion is batched with others (one fsync); until it commits the
        # key is in _delivered, so a copy arriving meanwhile is a duplicate.
        forwarder.forget(key)
        self._delivered.add(key)

        def told(deleted: asyncio.Future[bool]) -> None:
            error = deleted.exception()
            if error is not None:
                self._not_delivered(key, error)
            else:
                self._tell(key, dest, payload, source)

        self.store.delete_async(key, "delivered").add_done_callback(told)
        return True

    def _mark_held(self, key: str) -> None:
        """Record in the store that ``key`` waits for an application (committed off the loop)."""

        def done(marked: asyncio.Future[bool]) -> None:
            if marked.exception() is not None:
                self._emit(ev.Log, level="warning", message=f"holding {key}: {marked.exception()}")

        self.store.set_next_hop_async(key, LOCAL).add_done_callback(done)

    def _not_delivered(self, key: str, error: BaseException) -> None:
        self._delivered.discard(key)
        self._emit(ev.Log, level="error", message=f"delivering {key}: {error}")
        sb = self.store.info(key)
        if sb is not None:
            self._forwarder.track(sb)
            self._forwarder.wake()

    def _tell(self, key: str, dest: str, payload: bytes, source: str) -> None:
        sha256 = hashlib.sha256(payload).hexdigest()
        self._emit(ev.Delivered, bundle=key, source=source, dest=dest, size=len(payload), sha256=sha256)
        for deliver in list(self._subscribers.get(dest, [])):
            try:
                deliver(key, payload)
            except Exception as e:  # one broken client must not stop delivery to others
                log.warning("delivering %s to a client: %s", key, e)
