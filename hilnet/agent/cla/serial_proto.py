"""The serial convergence layer's session, sans-I/O: bytes and ``now`` in, bytes and events out.

One :class:`SerialSession` runs one end of a UART link. The driver

- passes every byte read from the port to :meth:`~SerialSession.feed`,
- writes whatever :meth:`~SerialSession.data_to_send` returns,
- calls :meth:`~SerialSession.tick` at :meth:`~SerialSession.next_deadline_ns`,
- answers each :class:`BundleReceived` with :meth:`~SerialSession.commit` or
  :meth:`~SerialSession.refuse` once the agent stored (or refused) the bundle.

Data frames are paced at the baud, so the port's buffer never holds more than
about two frames: an ACK or HELLO never waits behind seconds of data, and the
time a segment left the wire (for round-trip measurement) is known.

Peers: each side sends HELLO (node id, session nonce, the nonce it last heard)
until it hears the other say it hears it; then the peer is up. Any valid frame
is a sign of life; a side sends HELLO whenever it was silent for its keepalive
interval; silence for three of the peer's intervals plus a round trip marks
the peer down. A HELLO with a new nonce means the peer restarted: its partial
transfers are dropped and ours start again from their first segment.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

from hilnet.agent.cla.budget import MemoryBudget
from hilnet.agent.cla.serial_frame import (
    DATA_OVERHEAD,
    MAX_BITMAP,
    MAX_EID,
    MAX_FRAME,
    MAX_SEGMENT,
    Ack,
    Data,
    Frame,
    Hello,
    Refuse,
    RefuseReason,
    decode,
    encode,
)
from hilnet.agent.cla.serial_recv import Receiver, TransferKey
from hilnet.agent.cla.serial_send import Sender
from hilnet.agent.cla.serial_timing import LinkTiming, RttEstimator
from hilnet.agent.cla.slip import SlipDecoder, SlipReject, slip_encode
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.errors import FrameError

MS = 1_000_000
ACK_WIRE_BYTES = 2 + 14 + MAX_BITMAP // 4 + 4  # a typical ACK on the wire (small bitmap)


@dataclass(frozen=True, slots=True)
class SerialConfig:
    """How one end of a serial link behaves. Sizes in bytes, times in ns."""

    node_id: str  # our node id EID, e.g. "ipn:1.0"
    baud: int  # symbols/s; 8N1 carries baud / 10 bytes/s
    delay_ns: int | None = None  # one-way propagation hint; None: assume a 1 s round trip
    peer: str | None = None  # the peer's node id if known; a HELLO from another is rejected
    segment_size: int = 1024  # payload bytes per DATA frame
    max_window: int = 256  # segments in flight, at most
    max_active: int = 4  # bundles interleaved on the line
    ack_every: int = 16  # segments between ACKs while a transfer streams
    max_bundle: int = 64 * 2**20  # largest bundle accepted
    max_partial: int = 16  # transfers being reassembled at once
    max_partial_bytes: int = 256 * 2**20
    keepalive_ns: int | None = None  # None: derived from the round trip
    bits_per_byte: int = 10  # line cost of a byte: 10 for 8N1, 11 for 8N2 (paces what we send)
    budget: MemoryBudget | None = None  # the agent's memory budget, shared with its other connections

    def __post_init__(self) -> None:
        if not self.node_id or len(self.node_id.encode()) > MAX_EID or not self.node_id.isprintable():
            raise ValueError(f"node id must be 1..{MAX_EID} printable bytes, got {self.node_id!r}")
        if not 1 <= self.segment_size <= MAX_SEGMENT:
            raise ValueError(f"segment_size must be 1..{MAX_SEGMENT} bytes, got {self.segment_size}")
        if self.baud <= 0:
            raise ValueError(f"baud must be above 0, got {self.baud}")
        if self.delay_ns is not None and self.delay_ns < 0:
            raise ValueError(f"delay must be >= 0 ns, got {self.delay_ns}")
        if self.max_window < 1 or self.max_active < 1 or self.ack_every < 1:
            raise ValueError("max_window, max_active and ack_every must be at least 1")


# -- events -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleReceived:
    """A whole bundle arrived; answer with commit(key) or refuse(key)."""

    key: TransferKey
    data: bytes


@dataclass(frozen=True, slots=True)
class BundleAcked:
    """The peer committed bundle ``bundle_id``; the sender may drop its copy."""

    bundle_id: Hashable


@dataclass(frozen=True, slots=True)
class BundleRefused:
    """The peer refused ``bundle_id`` (``reason``: store-full, too-large, invalid)."""

    bundle_id: Hashable
    reason: str


@dataclass(frozen=True, slots=True)
class PeerUp:
    eid: str
    restarted: bool  # a session nonce other than the one heard before


@dataclass(frozen=True, slots=True)
class PeerDown:
    eid: str
    reason: str  # "timeout" or "restarted"


@dataclass(frozen=True, slots=True)
class FrameRejected:
    reason: str  # counter key: crc, bad-escape, oversize, segment, wrong-peer...


Event = BundleReceived | BundleAcked | BundleRefused | PeerUp | PeerDown | FrameRejected


class SerialSession:
    """One end of a serial CLA link. ``stats`` counts frames, resends and rejects by reason."""

    def __init__(self, config: SerialConfig, now_ns: int, nonce: int | None = None, stats: Counter | None = None):
        self.config = config
        self.nonce = nonce if nonce is not None else secrets.randbits(32) or 1
        self.timing = LinkTiming(config.baud, config.bits_per_byte)
        self.stats: Counter = stats if stats is not None else Counter()
        self.data_wire = slip_overhead_bound(config.segment_size)
        data_ns = self.timing.wire_ns(self.data_wire)
        # An ACK waits for at most two more data frames before it goes.
        self.ack_delay_ns = 2 * data_ns
        if config.delay_ns is None:
            initial = 1_000 * MS
        else:
            initial = 2 * config.delay_ns + data_ns + self.timing.wire_ns(ACK_WIRE_BYTES) + self.ack_delay_ns
        # Samples come from the newest segment an ACK covers; the oldest it covers
        # waited up to ack_delay longer at the receiver, so the RTO allows for that.
        self.rtt = RttEstimator(
            initial, granularity_ns=data_ns + self.ack_delay_ns, min_rto_ns=3 * data_ns + self.ack_delay_ns + 10 * MS
        )
        self.keepalive_ns = config.keepalive_ns or min(30_000 * MS, max(100 * MS, initial))
        # How far ahead of the line a frame is handed out: enough to ride out wake-up jitter, no more,
        # since an expedited bundle queued now waits for the frame on the wire plus this lead.
        self.lead_ns = min(data_ns, 20 * MS) + 2 * MS
        self.sender = Sender(self.nonce, config.segment_size, config.max_active, self.rtt)
        self.receiver = Receiver(
            max_bundle=config.max_bundle,
            max_partial=config.max_partial,
            max_partial_bytes=config.max_partial_bytes,
            ack_every=config.ack_every,
            ack_delay_ns=self.ack_delay_ns,
            stats=self.stats,
            budget=config.budget,
        )
        self.decoder = SlipDecoder(MAX_FRAME)
        self.peer_eid: str | None = None
        self.peer_nonce = 0
        self.peer_keepalive_ns = self.keepalive_ns
        self.up = False
        self._peer_restarted = False  # a new nonce was heard since the peer was last up
        self._heard_ns = now_ns  # last valid frame from the peer
        self._sent_ns = now_ns - self.keepalive_ns  # last frame we sent: say HELLO at once
        self._line_free_ns = now_ns  # when our last byte leaves the UART
        self._control: list[Frame] = []
        self._hello_now = True
        self._events: list[Event] = []
        self._update_window()

    # -- the API the driver and the agent use -----------------------------

    def send_bundle(self, bundle_id: Hashable, data: bytes, rank: int = DEFAULT_RANK) -> None:
        """Queue one bundle for the peer (BundleAcked says it arrived); it overtakes lower ``rank``s."""
        if len(data) > 0xFFFFFFFF:
            raise ValueError("a bundle over 4 GiB does not fit a DATA frame")
        self.sender.add(bundle_id, data, rank)

    def cancel(self, bundle_id: Hashable) -> bool:
        """Stop sending ``bundle_id``; True if it was still queued or in flight."""
        t = self.sender.by_id.get(bundle_id)
        if t is None:
            return False
        self.sender.remove(t)
        return True

    def commit(self, key: TransferKey) -> None:
        """The agent committed the bundle of ``key``: the FINAL ack goes out."""
        self.receiver.commit(key)  # counted as bundles_received by deliver_to_sink, where the agent took it

    def refuse(self, key: TransferKey, reason: RefuseReason = RefuseReason.STORE_FULL) -> None:
        """The agent refused the bundle of ``key``: REFUSE tells the sender to keep it."""
        self.receiver.refuse(key, reason)
        self.stats["bundles_refused_by_us"] += 1

    def pending(self) -> int:
        """Bundles queued or in flight."""
        return len(self.sender.by_id)

    # -- input ------------------------------------------------------------

    def feed(self, data: bytes, now_ns: int) -> list[Event]:
        """Bytes read from the port at ``now_ns``; returns what they caused."""
        self.stats["bytes_received"] += len(data)
        for item in self.decoder.feed(data):
            if isinstance(item, SlipReject):
                self._reject(item.reason)
                continue
            try:
                frame = decode(item)
            except FrameError as e:
                self._reject(e.reason)
                continue
            self._on_frame(frame, now_ns)
        return self.tick(now_ns)

    def _reject(self, reason: str) -> None:
        self.stats[f"rejected:{reason}"] += 1
        self._events.append(FrameRejected(reason))

    def _on_frame(self, frame: Frame, now_ns: int) -> None:
        if isinstance(frame, Hello):
            self._on_hello(frame, now_ns)
            return
        if self.peer_nonce == 0:
            self._reject("no-session")  # not yet introduced: say HELLO so it can be
            self._hello_now = True
            return
        if isinstance(frame, Data):
            if frame.nonce != self.peer_nonce:
                self._reject("stale-session")
                return
            self._heard_ns = now_ns
            self.stats["data_frames_received"] += 1
            done = self.receiver.on_data(frame, now_ns)
            if done is not None:
                self._events.append(BundleReceived(*done))
            return
        if frame.nonce != self.nonce:
            self._reject("stale-session")  # an answer to an earlier life of ours
            return
        self._heard_ns = now_ns
        if isinstance(frame, Ack):
            self.stats["acks_received"] += 1
            before = self.sender.regressions
            t = self.sender.on_ack(frame, now_ns)
            if self.sender.regressions != before:
                self.stats["transfers_restarted"] += 1  # the peer evicted its partial state
            if t is not None:
                self.sender.remove(t)
                self.stats["bundles_sent"] += 1
                self._events.append(BundleAcked(t.bundle_id))
            self._update_window()
        elif isinstance(frame, Refuse):
            t = self.sender.active.get(frame.transfer)
            if t is not None:
                self.sender.remove(t)
                self.stats["bundles_refused_by_peer"] += 1
                self._events.append(BundleRefused(t.bundle_id, frame.reason.name.lower().replace("_", "-")))

    def _on_hello(self, h: Hello, now_ns: int) -> None:
        if self.config.peer is not None and h.eid != self.config.peer:
            self._reject("wrong-peer")
            return
        self._heard_ns = now_ns
        self.peer_keepalive_ns = h.keepalive_ms * MS
        restarted = self.peer_nonce != 0 and h.nonce != self.peer_nonce
        if restarted:
            if self.up:
                self.up = False
                self._events.append(PeerDown(self.peer_eid or h.eid, "restarted"))
            self.receiver.forget_session(h.nonce)
            self.sender.restart_all()
            self.stats["peer_restarts"] += 1
            self._peer_restarted = True
        new_session = h.nonce != self.peer_nonce
        self.peer_nonce = h.nonce
        self.peer_eid = h.eid
        if h.seen != self.nonce or new_session:
            self._hello_now = True  # the peer does not know we hear it yet
        if h.seen == self.nonce and not self.up:
            self.up = True
            self._hello_now = True
            self.stats["peer_up"] += 1
            self._events.append(PeerUp(h.eid, self._peer_restarted))
            self._peer_restarted = False
            self.sender.resume(now_ns)
            self.receiver.resync(h.nonce, now_ns)

    # -- time ---------------------------------------------------------------

    def tick(self, now_ns: int) -> list[Event]:
        """Run timers due at ``now_ns``; returns the events since the last call."""
        if self.up and now_ns - self._heard_ns > self._dead_after_ns():
            self.up = False
            self.stats["peer_down"] += 1
            self._events.append(PeerDown(self.peer_eid or "", "timeout"))
        if self.up:
            lost = self.sender.expire(now_ns)
            if lost:
                self.stats["timeouts"] += 1
        self._control.extend(self.receiver.due_acks(now_ns))
        self._control.extend(self.receiver.replies)
        self.receiver.replies.clear()
        if now_ns - self._sent_ns >= self.keepalive_ns:
            self._hello_now = True
        events, self._events = self._events, []
        return events

    def _idle_resend_ns(self) -> int:
        # When an ACK for a segment is due at the latest, without RTO variance or backoff.
        return self.rtt.srtt_ns + self.ack_delay_ns + self.timing.wire_ns(self.data_wire)

    def _dead_after_ns(self) -> int:
        return 3 * self.peer_keepalive_ns + self.rtt.srtt_ns + 2 * self.timing.wire_ns(self.data_wire)

    def next_deadline_ns(self) -> int:
        """Earliest time (ns) at which tick() or data_to_send() has something to do."""
        times = [self._sent_ns + self.keepalive_ns]
        if self.up:
            times.append(self._heard_ns + self._dead_after_ns() + 1)
            rto = self.sender.next_timeout_ns()
            if rto is not None:
                times.append(rto)
            if self.sender.pending():
                if self.sender.next_frame() is not None:
                    times.append(self._line_free_ns - self.lead_ns)
                elif (oldest := self.sender.oldest_depart_ns()) is not None:
                    times.append(max(self._line_free_ns, oldest + self._idle_resend_ns()))
        ack = self.receiver.next_ack_ns()
        if ack is not None:
            times.append(ack)
        if self._control or self._hello_now or self.receiver.replies:
            times.append(0)
        return min(times)

    # -- output -------------------------------------------------------------

    def data_to_send(self, now_ns: int) -> bytes:
        """Bytes to write to the port now (possibly empty). Call after feed() and tick()."""
        out: list[bytes] = []
        if self._hello_now:
            self._hello_now = False
            self._control.append(
                Hello(self.nonce, self.peer_nonce, max(1, self.keepalive_ns // MS), self.config.node_id)
            )
        for frame in self._control:
            out.append(self._put(frame, now_ns))
            self.stats[f"{type(frame).__name__.lower()}_frames_sent"] += 1
        self._control.clear()
        while self.up and self._line_free_ns - now_ns <= self.lead_ns:
            pick = self.sender.next_frame()
            if pick is None and self._line_free_ns <= now_ns:
                pick = self.sender.idle_resend(now_ns, self._idle_resend_ns())
                if pick is not None:
                    self.stats["idle_resends"] += 1
            if pick is None:
                break
            t, index = pick
            wire = self._put(t.segment(index, self.nonce), now_ns)
            out.append(wire)
            if self.sender.mark_sent(t, index, self._line_free_ns):
                self.stats["retransmissions"] += 1
                self.stats["bytes_resent"] += len(wire)
            self.stats["data_frames_sent"] += 1
        return b"".join(out)

    def _put(self, frame: Frame, now_ns: int) -> bytes:
        wire = slip_encode(encode(frame))
        self._line_free_ns = max(self._line_free_ns, now_ns) + self.timing.wire_ns(len(wire))
        self._sent_ns = now_ns
        self.stats["bytes_sent"] += len(wire)
        return wire

    def _update_window(self) -> None:
        # Cover two round trips of line rate, plus the segments an ACK may wait
        # for (two frames' time, or ack_every). Not more: what is in flight when
        # the link is cut is lost and sent again after the outage.
        per_rtt = self.rtt.srtt_ns * self.timing.bytes_per_s / 1e9 / self.data_wire
        held = min(self.config.ack_every, 2) + 2
        self.sender.window = max(4, min(self.config.max_window, int(2 * per_rtt) + held))


def slip_overhead_bound(segment_size: int) -> int:
    """Typical wire bytes of a full DATA frame: header, CRC, two ENDs, ~2/256 escapes."""
    frame = DATA_OVERHEAD + segment_size
    return frame + 2 + frame // 128
