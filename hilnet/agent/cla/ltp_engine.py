"""One LTP engine (RFC 5326): its sessions both ways, their limits, and what is left of closed ones. Sans-I/O.

Datagrams and ``now`` go in (:meth:`LtpEngine.receive`, :meth:`LtpEngine.tick`);
datagrams to send (:meth:`LtpEngine.due`), events and the next instant it
needs waking come out. The driver (:mod:`hilnet.agent.cla.ltp`) moves them
to and from a UDP socket.

Bounded whatever peers send (docs/cla.md, "LTP"):

- a datagram that does not parse is counted under its reason and dropped;
  segments of engines we are not configured for are dropped;
- at most ``max_import`` import sessions: when a new one would pass it, the
  one that got least among those silent for a second is reclaimed without a
  word, else the new one is dropped; an import session silent for
  ``idle_ns`` of time its sender could have sent in is reclaimed likewise. A
  later segment of a reclaimed session (its sender is there after all) is
  answered with one cancel (CR, SYS_CNCLD), so the sender gives up that
  session and tries the bundle again in a new one (claims cannot be taken
  back, so a session cannot restart);
- at most ``max_block`` bytes per block, and the agent's memory budget for
  all blocks being received (:mod:`hilnet.agent.cla.budget`);
- ``closed_memory`` closed sessions are remembered, to answer a late report
  (with its RA) or a late checkpoint of a delivered block (with a report
  claiming all of it, so a sender whose final report was lost completes
  without the block being delivered twice).
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.ltp_export import ExportSession, ExportState
from hilnet.agent.cla.ltp_import import ImportSession, ImportState
from hilnet.agent.cla.ltp_pacer import Pacer
from hilnet.agent.cla.ltp_segment import (
    CHECKPOINT_TYPES,
    DATA_TYPES,
    Cancel,
    CancelAck,
    CancelReason,
    Claim,
    DataSeg,
    ReportAck,
    ReportSeg,
    Segment,
    SegType,
    check_report,
    decode,
)
from hilnet.agent.cla.ltp_session import Event, ImportEnded, Limited, LtpSettings, Outgoing, Peer, outgoing
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.errors import ClaError, WireError

STALL_NS = 1_000_000_000  # an import session silent this long may be reclaimed for a new one when all are taken
MAX_SESSION_NUMBER = 1 << 31
RECLAIMED = ("idle", "reclaimed", "evicted")  # why an import session was ended without a word to its sender
RECLAIMED_MARK = -1  # in the closed list: reclaimed, so a later segment of it is answered with a cancel
Stored = tuple[int, frozenset[int]]  # a stored block in the closed list: its length, the checkpoint serials seen
_FROM_SENDER = DATA_TYPES | {SegType.CANCEL_FROM_SENDER, SegType.REPORT_ACK, SegType.CANCEL_ACK_TO_RECEIVER}


class LtpEngine:
    """The LTP engine ``settings.engine_id`` with its ``peers`` (by engine id)."""

    def __init__(
        self,
        settings: LtpSettings,
        peers: Mapping[int, Peer],
        holding: Callable[[str], Holding] | None = None,
        rng: random.Random | None = None,
    ):
        self.settings = settings
        self.peers = dict(peers)
        self._holding = holding or (lambda peer: Holding(None))
        self._rng = rng or random.Random()
        self.pacer = Pacer(settings.rate)
        for p in self.peers.values():
            self.pacer.add_peer(p)
        self.exports: dict[int, ExportSession] = {}
        self.imports: dict[tuple[int, int], ImportSession] = {}
        self._closed_exports: OrderedDict[int, int] = OrderedDict()  # number -> peer engine
        # (engine, session) -> (red part length, checkpoint serials seen) of a stored block; RECLAIMED_MARK; None
        self._closed_imports: OrderedDict[tuple[int, int], Stored | int | None] = OrderedDict()
        self._next_number = self._rng.randrange(1, MAX_SESSION_NUMBER)
        self.events: list[Event] = []
        self.stats: Counter[str] = Counter()

    # --- the client's side -----------------------------------------------------------------

    @property
    def export_room(self) -> bool:
        return len(self.exports) < self.settings.max_export

    def send_block(self, peer_engine: int, block: bytes, rank: int = DEFAULT_RANK) -> int:
        """Open an export session for ``block`` to ``peer_engine``; returns its session number. Raises ClaError.

        ``rank`` (class of service, :mod:`hilnet.bundle.cos`): its first pass goes ahead of lower-ranked ones."""
        peer = self.peers.get(peer_engine)
        if peer is None:
            raise ClaError(f"no LTP peer with engine id {peer_engine}")
        if len(block) > self.settings.max_block:
            raise ClaError(f"a block of {len(block)} bytes passes the LTP block limit of {self.settings.max_block}")
        if not self.export_room:
            raise ClaError(f"{len(self.exports)} LTP export sessions open, the limit")
        number = self._next_number
        self._next_number = number % (MAX_SESSION_NUMBER - 1) + 1
        s = ExportSession(self.settings, number, peer, block, self.pacer.put, self._rng.randrange(1, 1 << 14), rank)
        self.exports[number] = s
        s.stats = self.stats
        s.start()
        self.stats["export_open"] = len(self.exports)
        self.stats["export_sessions"] += 1
        return number

    def cancel_export(self, number: int, why: str) -> None:
        s = self.exports.get(number)
        if s is not None:
            s.cancel(CancelReason.USR_CNCLD, why)
            self._collect(s)

    def accept(self, engine: int, number: int) -> None:
        """The agent stored the block of import session (``engine``, ``number``)."""
        s = self.imports.get((engine, number))
        if s is not None:
            s.accept()
            self._collect(s)

    def refuse(self, engine: int, number: int, why: str) -> None:
        s = self.imports.get((engine, number))
        if s is not None:
            s.refuse(why)
            self._collect(s)

    # --- the wire's side -------------------------------------------------------------------

    def receive(self, datagram: bytes, now: int) -> None:
        """One datagram from the socket."""
        try:
            seg = decode(datagram)
        except WireError as exc:
            self.stats[exc.reason] += 1
            return
        if seg.type in _FROM_SENDER:
            self._to_import(seg, now)
        elif seg.engine != self.settings.engine_id:
            self.stats["not_our_session"] += 1
        else:
            self._to_export(seg, now)

    def due(self, now: int) -> list[Outgoing]:
        """Segments that may leave now (their timers start)."""
        return self.pacer.due(now)

    def tick(self, now: int) -> None:
        """Run the timers due by ``now`` and reclaim sessions that can never end on their own."""
        for s in list(self.exports.values()):
            s.on_timer(now)
            plan = s.peer.plan
            if s.stuck:  # no use sending a cancel nobody can answer: just fail the send
                s.close("the contact plan opens no contact for the peer's answer again")
            elif s.unsent and plan.planned and plan.next_send(now) is None:
                s.close("the contact plan opens no contact to the peer again")
            self._collect(s)
        for key, imp in list(self.imports.items()):
            imp.on_timer(now)
            if imp.state in (ImportState.RECEIVING, ImportState.DELIVERED) and self._quiet_until(imp) <= now:
                if imp.state is ImportState.DELIVERED:
                    imp.close_stored()  # stored; its sender never sent another checkpoint: remember it, done
                else:
                    self._reclaim(key, "idle")
                    continue
            self._collect(imp)

    def next_wakeup(self, now: int) -> int | None:
        times = [s.deadline() for s in self.exports.values()] + [s.deadline() for s in self.imports.values()]
        times += [self.pacer.next_time(now)]
        quiet = (ImportState.RECEIVING, ImportState.DELIVERED)
        times += [self._quiet_until(imp) for imp in self.imports.values() if imp.state in quiet]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    def _quiet_until(self, imp: ImportSession) -> int:
        """When ``imp`` has been silent for ``idle_ns`` plus two round trips (a report out and its repairs back,
        twice) of time its sender could send in; plain time once the plan has no window left."""
        plan = imp.peer.plan
        rtt = plan.round_trip(imp.last_heard) if plan.planned else self.settings.rtt_ns
        quiet = self.settings.idle_ns + 2 * rtt
        t = plan.expiry(imp.last_heard, quiet)
        return imp.last_heard + quiet if t is None else t

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    # --- internals ------------------------------------------------------------------------

    def _to_export(self, seg: Segment, now: int) -> None:
        s = self.exports.get(seg.session)
        if s is None:
            self._late_to_export(seg)
            return
        if isinstance(seg.content, ReportSeg):
            why = check_report(seg.content) or ("claim_out_of_range" if seg.content.upper > len(s.block) else None)
            if why is not None:
                self.stats[why] += 1
                return
        s.on_segment(seg, now)
        self._collect(s)

    def _late_to_export(self, seg: Segment) -> None:
        peer = self._closed_exports.get(seg.session)
        if peer is None:
            self.stats["unknown_session"] += 1
            return
        self.stats["late_segment"] += 1
        me = self.settings.engine_id
        if isinstance(seg.content, ReportSeg):  # RFC 5326 6.13: a redundant RS is still acknowledged
            self.pacer.put(
                outgoing(
                    peer, Segment(SegType.REPORT_ACK, me, seg.session, ReportAck(seg.content.serial)), control=True
                )
            )
        elif seg.type is SegType.CANCEL_FROM_RECEIVER:
            self.pacer.put(
                outgoing(peer, Segment(SegType.CANCEL_ACK_TO_RECEIVER, me, seg.session, CancelAck()), control=True)
            )

    def _to_import(self, seg: Segment, now: int) -> None:
        key = (seg.engine, seg.session)
        s = self.imports.get(key)
        if s is None:
            s = self._new_import(seg, now)
            if s is None:
                return
        why = s.on_segment(seg, now)
        if why is not None:
            self.stats[why] += 1
        self._collect(s)

    def _new_import(self, seg: Segment, now: int) -> ImportSession | None:
        key = (seg.engine, seg.session)
        peer = self.peers.get(seg.engine)
        if peer is None:
            self.stats["unknown_engine"] += 1
            return None
        if key in self._closed_imports:
            self._late_to_import(seg, peer, self._closed_imports[key])
            return None
        if seg.type not in DATA_TYPES:
            if seg.type is SegType.CANCEL_FROM_SENDER:
                self.pacer.put(
                    outgoing(peer.engine, Segment(SegType.CANCEL_ACK_TO_SENDER, *key, CancelAck()), control=True)
                )
            self.stats["unknown_session"] += 1
            return None
        if len(self.imports) >= self.settings.max_import and not self._make_room(now):
            self.stats["import_sessions_full"] += 1
            self.events.append(Limited("sessions", f"{len(self.imports)} LTP import sessions open", peer.node))
            return None
        s = ImportSession(
            self.settings, peer, seg.session, self.pacer.put, self._holding(peer.node), self._rng.randrange(1, 1 << 14)
        )
        s.last_heard = now
        s.stats = self.stats
        if s.hold.budget is not None:  # the budget may take a stalled block's bytes back: the session ends
            s.hold.evict = lambda: self._reclaim(key, "evicted") if key in self.imports else None
        self.imports[key] = s
        self.stats["import_open"] = len(self.imports)
        self.stats["import_sessions"] += 1
        return s

    def _late_to_import(self, seg: Segment, peer: Peer, kept: Stored | int | None) -> None:
        self.stats["late_segment"] += 1
        c = seg.content
        if kept == RECLAIMED_MARK and seg.type in DATA_TYPES:  # one cancel, no timer: the sender's CP has one
            cr = Segment(SegType.CANCEL_FROM_RECEIVER, seg.engine, seg.session, Cancel(CancelReason.SYS_CNCLD))
            self.pacer.put(outgoing(peer.engine, cr, control=True))
        elif (
            isinstance(kept, tuple)
            and seg.type in CHECKPOINT_TYPES
            and isinstance(c, DataSeg)
            and c.checkpoint in kept[1]
        ):
            # Stored already: the sender missed our final report. Claim it all again (no timer: its CP has
            # one). Only for a checkpoint this session saw: a new session that happens to reuse a remembered
            # number (a sender restarted) must not be told its block arrived.
            red_end = kept[0]
            rs = ReportSeg(self._rng.randrange(1 << 14, 1 << 30), c.checkpoint, red_end, 0, (Claim(0, red_end),))
            self.pacer.put(outgoing(peer.engine, Segment(SegType.REPORT, seg.engine, seg.session, rs), control=True))
        elif seg.type is SegType.CANCEL_FROM_SENDER:
            self.pacer.put(
                outgoing(
                    peer.engine,
                    Segment(SegType.CANCEL_ACK_TO_SENDER, seg.engine, seg.session, CancelAck()),
                    control=True,
                )
            )

    def _make_room(self, now: int) -> bool:
        # The victim: a receiving session silent for a while that got the least so far (a bogus one
        # sends a segment and stops; a real one waiting out a round trip has most of its block).
        quiet = [
            (s.got.total, s.last_heard, k)
            for k, s in self.imports.items()
            if s.state is ImportState.RECEIVING and now - s.last_heard >= STALL_NS
        ]
        if not quiet:
            return False
        self._reclaim(min(quiet)[2], "reclaimed")
        return True

    def _reclaim(self, key: tuple[int, int], why: str) -> None:
        s = self.imports[key]
        s.events.append(ImportEnded(s.peer.engine, s.number, why))
        s.state = ImportState.CLOSED
        s.outcome = why
        s.hold.release()
        s.buf = bytearray()
        self.stats[f"import_{why}"] += 1
        self._collect(s)

    def _collect(self, s: ExportSession | ImportSession) -> None:
        """Move ``s``'s events out, and forget it (remembering its end) once closed."""
        self.events += s.events
        s.events = []
        self._forget_if_closed(s)
        self.stats["export_open"], self.stats["import_open"] = len(self.exports), len(self.imports)  # gauges

    def _forget_if_closed(self, s: ExportSession | ImportSession) -> None:
        if isinstance(s, ExportSession):
            if s.state is ExportState.CLOSED and self.exports.pop(s.number, None) is not None:
                _remember(self._closed_exports, s.number, s.peer.engine, self.settings.closed_memory)
            return
        if s.state is ImportState.CLOSED and self.imports.pop((s.peer.engine, s.number), None) is not None:
            kept: Stored | int | None = None
            if s.outcome == "" and s.red_end is not None:
                kept = (s.red_end, frozenset(s.checkpoints_seen))
            elif s.outcome in RECLAIMED:
                kept = RECLAIMED_MARK
            _remember(self._closed_imports, (s.peer.engine, s.number), kept, self.settings.closed_memory)


def _remember(memory: OrderedDict[Any, Any], key: object, value: object, limit: int) -> None:
    memory[key] = value
    while len(memory) > limit:
        memory.popitem(last=False)
