"""ION's watch tokens and bprecvfile's files turned into hilnet's bundle events. Pure.

What each watch letter (:mod:`hilnet.stacks.ion.watch`) becomes:

- ``a`` (sourced here) and ``y`` (received from a CL): ``received`` and
  ``stored``. ION has the bundle in its SDR, which survives a crash.
- ``c`` (handed to the CL for transmission): ``forwarded``. ION 4.1.3 keeps
  its copy until its CL is done with it (TCPCLv3 without custody), and no
  watch token says when: the driver asks ``bplist``
  (:mod:`hilnet.stacks.ion.bplist`), and a forwarded bundle no longer listed
  is ``sent`` (:meth:`BundleTracker.listed`). hilnet's ``acked`` (the next
  hop committed it) is not observable.
- ``z`` (queued for delivery here) waits for bprecvfile's file: the n-th
  ``z`` and the n-th file are the same bundle (ION delivers an endpoint's
  bundles in order), and the file's SHA-256 makes the ``delivered`` event.
- ``!``: ``expired``; ``~`` (abandoned: no route now or later, or a failed transmission no
  later contact can redo): ``dropped``.
- ``b``, ``#``, ``j``, ``k``: queueing inside ION, no hilnet event.

Bundle ids are hilnet's (:func:`hilnet.agent.intake.bundle_key`), so a bundle
keeps one id across ION and hilnet nodes. Tokens without the creation
milliseconds are matched to a bundle this node saw whole (``a`` or ``y``)
by source and count; one read before its bundle was seen whole waits for it.
Several bundles can share a source and count (a hilnet agent numbers each
millisecond's bundles from 0), so such a token names the oldest one it can
mean: for ``c`` the oldest held and not yet forwarded (ION forwards a
neighbour's bundles of one class in the order they came), for ``!`` and
``~`` the oldest held (of one source and lifetime, the oldest expires
first). Sizes are known for bundles injected here and delivered here; ION's
tokens carry none, so elsewhere they are 0.
"""

from __future__ import annotations

from collections import deque

from hilnet.agent.events import Delivered, Dropped, Event, Expired, Forwarded, Received, Sent, Stored
from hilnet.agent.intake import bundle_key
from hilnet.bundle.blocks import BundleId
from hilnet.bundle.eid import parse_eid
from hilnet.stacks.ion.watch import Sighting


def key_of(source: str, msec: int, count: int) -> str:
    """hilnet's id of ION bundle ``(source, msec, count)``."""
    return bundle_key(BundleId(parse_eid(source), msec, count))


class BundleTracker:
    """One ION node's bundles as its watch stream and deliveries tell them.

    ``node`` is the node's name, ``eid`` its endpoint, ``neighbour`` the one
    node it can send to (None when it has several: ION does not say which
    one a ``c`` went to, and the event then names ``?``), ``cla`` its
    convergence layer's name in events.
    """

    def __init__(self, node: str, eid: str, neighbour: str | None, cla: str):
        self.node = node
        self.eid = eid
        self.neighbour = neighbour or "?"
        self.cla = cla
        self._msec: dict[tuple[str, int], list[int]] = {}  # (source, count) -> msecs of bundles seen whole
        self._sizes: dict[str, int] = {}  # key -> payload bytes, where known
        self._held: set[str] = set()
        self._forwarded: set[str] = set()  # handed to the CL, still ION's until bplist no longer lists it
        self._to_deliver: deque[str] = deque()  # keys queued for delivery, waiting for their file
        self._files: deque[tuple[str, int, str]] = deque()  # (name, size, sha256) waiting for their key
        self._early: dict[tuple[str, int], list[Sighting]] = {}  # tokens read before their bundle was seen whole

    def held(self) -> tuple[int, int]:
        """(bundles, payload bytes where known) ION holds, as far as its tokens tell."""
        return len(self._held), sum(self._sizes.get(k, 0) for k in self._held)

    def injected(self, sighting: Sighting, dest: str, size: int, tag: str, t_ns: int) -> tuple[str, list[Event]]:
        """The ``a`` token bpsendfile printed for a bundle of ``size`` bytes to ``dest``: its key and events."""
        key = self._whole(sighting)
        self._sizes[key] = size
        received = Received(
            t_ns=t_ns, node=self.node, bundle=key, source=sighting.source, dest=dest, size=size, tag=tag
        )
        return key, self._store(key, received, tag, t_ns) + self._replay(sighting, t_ns)

    def sighting(self, s: Sighting, t_ns: int) -> list[Event]:
        """Events of one watch token read from the node's daemons."""
        if s.letter in "ayz":
            key = self._whole(s)
            if s.letter != "z":
                return self._event(s, key, t_ns) + self._replay(s, t_ns)
        else:
            if (s.source, s.count) not in self._msec:
                # Not seen whole yet: the daemons' tokens can be read before bpsendfile's own
                # "a" is (another process, another pipe). It waits for it.
                self._early.setdefault((s.source, s.count), []).append(s)
                return []
            key = self._meant(s)
        return self._event(s, key, t_ns)

    def _replay(self, whole: Sighting, t_ns: int) -> list[Event]:
        """The tokens of ``whole``'s bundle that came before it was seen whole, now that it is."""
        early = self._early.pop((whole.source, whole.count), [])
        return [e for s in early for e in self.sighting(s, t_ns)]

    def _event(self, s: Sighting, key: str, t_ns: int) -> list[Event]:
        if s.letter == "y":
            received = Received(
                t_ns=t_ns,
                node=self.node,
                bundle=key,
                source=s.source,
                dest="?",
                size=self._sizes.get(key, 0),
                peer=None,
                cla=self.cla,
            )
            return self._store(key, received, None, t_ns)
        if s.letter == "a":  # a bundle sourced by something other than the driver (an ION admin bundle)
            return self._store(key, None, None, t_ns)
        if s.letter == "c":
            self._forwarded.add(key)
            return [
                Forwarded(
                    t_ns=t_ns, node=self.node, bundle=key, to=self.neighbour, cla=self.cla, size=self._sizes.get(key, 0)
                )
            ]
        if s.letter == "z":
            self._to_deliver.append(key)
            return self._pair(t_ns)
        if s.letter == "!":
            self._held.discard(key)
            self._forwarded.discard(key)
            return [Expired(t_ns=t_ns, node=self.node, bundle=key)]
        if s.letter == "~":
            self._held.discard(key)
            self._forwarded.discard(key)
            return [
                Dropped(
                    t_ns=t_ns,
                    node=self.node,
                    bundle=key,
                    reason="abandoned by ION: no route, or its CL failed and no later contact can carry it",
                )
            ]
        return []

    def waiting_for_cl(self) -> bool:
        """Whether a forwarded bundle may still be in ION's store (worth asking bplist)."""
        return bool(self._forwarded)

    def forwarded(self) -> frozenset[str]:
        """The bundles handed to ION's CL and not yet known to have left."""
        return frozenset(self._forwarded)

    def listed(self, keys: frozenset[str], t_ns: int, asked: frozenset[str] | None = None) -> list[Event]:
        """``bplist`` listed ``keys``: each forwarded bundle not among them has left ION: sent.

        ``asked``: the forwarded bundles when bplist was started (default: now); one
        forwarded since may have come in after bplist looked, so only these count.
        """
        gone = sorted((self._forwarded if asked is None else self._forwarded & asked) - keys)
        self._forwarded -= set(gone)
        self._held -= set(gone)
        return [Sent(t_ns=t_ns, node=self.node, bundle=k, to=self.neighbour, cla=self.cla) for k in gone]

    def delivered_file(self, name: str, size: int, sha256: str, t_ns: int) -> list[Event]:
        """bprecvfile wrote file ``name`` (``size`` bytes, hashing to ``sha256``)."""
        self._files.append((name, size, sha256))
        return self._pair(t_ns)

    def _pair(self, t_ns: int) -> list[Event]:
        out: list[Event] = []
        while self._to_deliver and self._files:
            key, (_name, size, sha) = self._to_deliver.popleft(), self._files.popleft()
            self._held.discard(key)
            self._sizes.setdefault(key, size)
            source = key.split("/", 1)[0]
            out.append(
                Delivered(t_ns=t_ns, node=self.node, bundle=key, source=source, dest=self.eid, size=size, sha256=sha)
            )
        return out

    def _meant(self, s: Sighting) -> str:
        """The bundle a token without creation milliseconds means (see the module's doc)."""
        seen = self._msec[(s.source, s.count)]
        # Bundles gone from here are forgotten (the latest seen stays, as before), so a long run
        # does not scan every bundle it ever saw.
        seen[:] = [m for m in seen[:-1] if key_of(s.source, m, s.count) in self._held] + seen[-1:]
        keys = [key_of(s.source, msec, s.count) for msec in seen]
        held = [k for k in keys if k in self._held]
        if s.letter == "c":
            held = [k for k in held if k not in self._forwarded]
        return held[0] if held else keys[-1]

    def _whole(self, s: Sighting) -> str:
        seen = self._msec.setdefault((s.source, s.count), [])
        msec = s.msec if s.msec is not None else (seen[-1] if seen else 0)
        if msec not in seen:
            seen.append(msec)
        return key_of(s.source, msec, s.count)

    def _store(self, key: str, received: Received | None, tag: str | None, t_ns: int) -> list[Event]:
        out: list[Event] = [] if received is None else [received]
        self._held.add(key)
        bundles, nbytes = self.held()
        out.append(
            Stored(
                t_ns=t_ns,
                node=self.node,
                bundle=key,
                size=self._sizes.get(key, 0),
                store_bundles=bundles,
                store_bytes=nbytes,
                tag=tag,
            )
        )
        return out
