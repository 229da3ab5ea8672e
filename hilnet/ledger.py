"""Who holds which bundle: one account folded from a run's event records (pure).

A :class:`Ledger` reads the records of events.jsonl (docs/run.md), one at a
time with :meth:`Ledger.fold` (the live view, the controller's settle test)
or a whole log with :meth:`Ledger.of` (the checks, ``hilnet report``): the
same code either way, so a run is judged by the account it was watched with.

What it keeps, per bundle id: the injection that made it (controller
``inject``/``inject-failed``), the nodes storing it now (an agent's
``stored`` adds the node; ``acked``, ``sent``, ``delivered`` and ``expired`` remove
it: a bundle leaves a store only for one of those, and that event says so), its deliveries, whether it expired, where
and why an agent dropped it or refused to take it in, and every sighting of it in order. Records of the wrong shape are ignored, never an
error: a log written by a broken run is still read. No I/O, no threads, no
clock; times are the records' own ``t_ns`` (scenario ns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Agent events that say where a bundle is (or was): a bundle's sightings.
SIGHTING_EVENTS = frozenset(
    (
        "stored",
        "forwarded",
        "acked",
        "sent",
        "delivered",
        "expired",
        "received",
        "refused",
        "dropped",
        "security-failed",
    )
)
# Agent events after which the node no longer holds its copy. ``sent``: a CLA without
# acknowledgements (MTCP) sent it and the copy went, with no word that the next hop has it.
RELEASE_EVENTS = frozenset(("acked", "sent", "delivered", "expired"))


def drop_is_final(reason: str) -> bool:
    """Whether a ``dropped`` event with ``reason`` ended that copy of the bundle for good.

    A duplicate is dropped because the node has (or delivered) the bundle already: the
    bundle lives on there, so that drop is no fate. Every other reason (hop limit,
    destination that names no node, a block that asks for deletion) is the end of it.
    """
    return not reason.startswith("duplicate")


@dataclass(frozen=True, slots=True)
class Drop:
    """Where and why a bundle's copy ended without delivery: a ``dropped`` (or ``security-failed``,
    or at injection ``refused``) event at ``node``, scenario time ``t_ns``."""

    node: str
    reason: str
    t_ns: int


@dataclass(frozen=True, slots=True)
class Observes:
    """What a node's DTN stack can tell (docs/stacks.md): the same for every node that runs it.

    ``events``: the bundle event kinds it reports (a subset of
    :data:`SIGHTING_EVENTS`; ``delivered`` always, or no run could be judged).
    ``stored``: it reports each bundle it stores (``stored``) and each one that
    leaves (the :data:`RELEASE_EVENTS` it sees), and its store's use at the end,
    so "still held" can be told from "gone". ``crash``: a ``crash`` fault (kill -9)
    and a restart find what it had accepted. ``note``: what it cannot see, in words.
    Written into the run's ``run-start`` record (:meth:`as_record`), read back here.
    """

    events: frozenset[str]
    stored: bool
    crash: bool
    note: str = ""

    def sees(self, kind: str) -> bool:
        return kind in self.events

    @property
    def accounts(self) -> bool:
        """Whether a bundle it holds can be told from one it lost: it says what it stores and what expires."""
        return self.stored and self.sees("expired")

    def as_record(self) -> dict[str, object]:
        return {"events": sorted(self.events), "stored": self.stored, "crash": self.crash, "note": self.note}

    @classmethod
    def from_record(cls, rec: Mapping[str, object]) -> Observes:
        events = rec.get("events")
        kinds = frozenset(e for e in events if isinstance(e, str)) if isinstance(events, list) else frozenset()
        return cls(kinds, rec.get("stored") is True, rec.get("crash") is True, _str(rec.get("note")) or "")


# hilnet's agent observes everything; so does a run recorded before stacks were named.
OBSERVES_ALL = Observes(SIGHTING_EVENTS, stored=True, crash=True)


@dataclass(frozen=True, slots=True)
class Sighting:
    """A bundle at ``node`` for ``event`` at scenario time ``t_ns``.

    ``peer`` is the other node of a hop event (``to`` of forwarded and sent, ``by`` of
    acked) as the agent named it, and ``cla`` the convergence layer, where the event says.
    """

    node: str
    event: str
    t_ns: int
    peer: str | None = None
    cla: str | None = None


@dataclass(frozen=True, slots=True)
class Injection:
    """One bundle the controller put in (or tried to): its ``inject`` or ``inject-failed`` record.

    ``key`` is the bundle id the source agent gave it; None when the injection failed.
    ``t_ns`` is the scenario time of the injection; ``size`` payload bytes.
    """

    tag: str  # "photos#3"
    traffic: str
    frm: str
    to: str
    size: int
    sha256: str | None  # of the payload, hex
    t_ns: int
    key: str | None
    priority: str = "normal"  # class of service: bulk, normal or expedited
    ordinal: int = 0
    failure: str | None = None  # why the injection failed, as its inject-failed record says


@dataclass(frozen=True, slots=True)
class Delivery:
    """A ``delivered`` event: at ``node`` at scenario time ``t_ns``, payload SHA-256 as reported."""

    node: str
    t_ns: int
    sha256: str | None


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: object, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


class Ledger:
    """The bundles of one run: where each is, who holds it, how it ended."""

    def __init__(self) -> None:
        self._injections: dict[str, Injection] = {}  # tag -> injection, first-seen order
        self._tag_of: dict[str, str] = {}  # bundle id -> tag
        self._holders: dict[str, set[str]] = {}  # bundle id -> nodes storing it now
        self._held: dict[str, set[str]] = {}  # node -> bundle ids it stores now
        self._deliveries: dict[str, list[Delivery]] = {}
        self._sightings: dict[str, list[Sighting]] = {}
        self._expired: set[str] = set()
        self._drops: dict[str, Drop] = {}  # bundle id -> its last final drop
        self._refusals: dict[str, Drop] = {}  # traffic tag -> why its source agent would not take it in
        self._stacks: dict[str, tuple[str, Observes]] = {}  # node -> its stack and what that observes (run-start)
        self._name_of: dict[str, str] = {}  # node id (EID) -> node name, as run-start lists them
        self.end_ns = 0  # latest scenario time of any record
        self.end_reason = "unknown"  # the run-end record's reason
        self.end_detail: str | None = None

    @classmethod
    def of(cls, records: Iterable[Mapping[str, object]]) -> Ledger:
        """The ledger of a whole log, records in time order."""
        ledger = cls()
        for r in records:
            ledger.fold(r)
        return ledger

    # -- folding ------------------------------------------------------------------------

    def fold(self, record: Mapping[str, object]) -> None:
        """Take one event record (as written to events.jsonl) into the account."""
        t = _int(record.get("t_ns"))
        self.end_ns = max(self.end_ns, t)
        src, kind = record.get("src"), record.get("event")
        if not isinstance(kind, str):
            return
        if src == "controller":
            self._controller(record, kind, t)
        elif src == "agent":
            key = _str(record.get("bundle"))
            if key is not None:
                self._agent(key, _str(record.get("node")) or "?", kind, t, record)

    def _controller(self, r: Mapping[str, object], kind: str, t: int) -> None:
        if kind in ("inject", "inject-failed"):
            tag = _str(r.get("tag"))
            if tag is None:
                return
            key = _str(r.get("bundle"))
            self._injections[tag] = Injection(
                tag=tag,
                traffic=_str(r.get("traffic")) or tag.split("#")[0],
                frm=_str(r.get("frm")) or "?",
                to=_str(r.get("to")) or "?",
                size=_int(r.get("size")),
                sha256=_str(r.get("sha256")),
                t_ns=t,
                key=key,
                priority=_str(r.get("priority")) or "normal",
                ordinal=_int(r.get("ordinal")),
                failure=_str(r.get("reason")) if kind == "inject-failed" else None,
            )
            if key is not None:
                self._tag_of[key] = tag
        elif kind == "run-start":
            self._run_start(r)
        elif kind == "run-end":
            self.end_reason = _str(r.get("reason")) or self.end_reason
            self.end_detail = _str(r.get("detail"))
        # A crash changes nothing here: a killed agent keeps its store on disk.

    def _run_start(self, r: Mapping[str, object]) -> None:
        nodes, stacks = r.get("nodes"), r.get("stacks")
        if isinstance(nodes, Mapping):
            self._name_of.update({eid: name for name, eid in nodes.items() if isinstance(eid, str)})
        if isinstance(stacks, Mapping):
            for node, rec in stacks.items():
                if isinstance(node, str) and isinstance(rec, Mapping):
                    self._stacks[node] = (_str(rec.get("stack")) or "?", Observes.from_record(rec))

    def _agent(self, key: str, node: str, kind: str, t: int, r: Mapping[str, object]) -> None:
        reason = _str(r.get("reason")) or kind
        ended: Drop | None = None  # this node's copy ended without delivery (ION abandons what it stored, too)
        if kind == "dropped" and drop_is_final(reason):
            ended = self._drops[key] = Drop(node, reason, t)
        elif kind == "security-failed":
            check = _str(r.get("check"))
            ended = self._drops[key] = Drop(node, f"failed its BPSec check ({check or '?'}): {reason}", t)
        elif kind == "refused" and _str(r.get("tag")) is not None and r.get("peer") is None:
            self._refusals[str(r["tag"])] = Drop(node, reason, t)  # the source would not take it in
        if kind in SIGHTING_EVENTS:
            peer = _str(r.get("to")) or _str(r.get("by"))
            self._sightings.setdefault(key, []).append(Sighting(node, kind, t, peer, _str(r.get("cla"))))
        if kind == "stored":
            self._holders.setdefault(key, set()).add(node)
            self._held.setdefault(node, set()).add(key)
        elif kind in RELEASE_EVENTS or ended is not None:
            self._holders.get(key, set()).discard(node)
            self._held.get(node, set()).discard(key)
        if kind == "delivered":
            self._deliveries.setdefault(key, []).append(Delivery(node, t, _str(r.get("sha256"))))
        elif kind == "expired":
            self._expired.add(key)

    # -- questions ----------------------------------------------------------------------

    def injections(self) -> tuple[Injection, ...]:
        """Every injection, failed ones too, in the order they were first recorded."""
        return tuple(self._injections.values())

    def injected(self) -> int:
        """Bundles injected so far (failed injections not counted)."""
        return len(self._tag_of)

    def injection_of(self, key: str) -> Injection | None:
        """The injection that made bundle ``key`` (None: not one of the controller's)."""
        tag = self._tag_of.get(key)
        return None if tag is None else self._injections.get(tag)

    def holders(self, key: str) -> tuple[str, ...]:
        """Nodes storing bundle ``key`` now, sorted."""
        return tuple(sorted(self._holders.get(key, ())))

    def held_by(self, node: str) -> int:
        """How many bundles ``node`` stores now."""
        return len(self._held.get(node, ()))

    def stack_of(self, node: str) -> str:
        """The DTN stack that played ``node`` (hilnet's agent unless run-start said otherwise)."""
        return self._stacks.get(node, ("hilnet", OBSERVES_ALL))[0]

    def observes(self, node: str) -> Observes:
        return self._stacks.get(node, ("hilnet", OBSERVES_ALL))[1]

    def stacks(self) -> dict[str, str]:
        """node -> stack, as the run recorded them (empty for a run recorded before stacks were named)."""
        return {node: stack for node, (stack, _) in self._stacks.items()}

    def unaccounted_at(self, key: str) -> tuple[str, ...]:
        """Nodes that may hold bundle ``key`` now but whose stack cannot say whether it does (sorted).

        Where the bundle was last seen decides: the node of its last sighting
        (unless that sighting let it go), and the next hop it was handed to.
        With none, the source (a stack that reports nothing until delivery).
        A bundle that reached no delivery, store or expiry is lost only when
        none of these nodes is blind to its store; otherwise its fate is not
        observable for that stack, and the checks say so instead of guessing.
        """
        seen = self._sightings.get(key)
        maybe: set[str] = set()
        if not seen:
            inj = self.injection_of(key)
            if inj is not None:
                maybe.add(inj.frm)
        else:
            last = seen[-1]
            if last.event not in RELEASE_EVENTS and last.event not in ("dropped", "security-failed"):
                maybe.add(last.node)
            if last.event in ("forwarded", "acked", "sent") and last.peer:
                maybe.add(self._name_of.get(last.peer, last.peer))
        return tuple(sorted(n for n in maybe if not self.observes(n).accounts))

    def deliveries(self, key: str) -> tuple[Delivery, ...]:
        return tuple(self._deliveries.get(key, ()))

    def delivered(self) -> int:
        """Bundles delivered at least once (any bundle id, the controller's or not)."""
        return len(self._deliveries)

    def expired(self, key: str) -> bool:
        return key in self._expired

    def dropped(self, key: str) -> Drop | None:
        """Where and why bundle ``key`` was last dropped for good (None: never)."""
        return self._drops.get(key)

    def refused(self, tag: str) -> Drop | None:
        """Why the source agent refused to take in the injection ``tag`` (None: it did not)."""
        return self._refusals.get(tag)

    def sightings(self, key: str) -> tuple[Sighting, ...]:
        return tuple(self._sightings.get(key, ()))

    def settled(self, total: int) -> bool:
        """All ``total`` bundles injected, each delivered, expired or dropped, and no copy left in any store.

        A bundle delivered but still held somewhere waits for an acknowledgement:
        ending the run then would judge a store the agent is about to empty. One
        an agent dropped for good (its hop limit, failing BPSec) is as final as an
        expired one.
        """
        if len(self._tag_of) < total:
            return False
        done = (self._deliveries, self._expired, self._drops)
        return all(any(key in d for d in done) and not self._holders.get(key) for key in self._tag_of)
