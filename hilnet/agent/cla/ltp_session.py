"""Values LTP sessions share: the engine's settings, what a session hands the engine to send, its events.

Kept apart from the state machines (:mod:`~hilnet.agent.cla.ltp_export`,
:mod:`~hilnet.agent.cla.ltp_import`) so that the engine, the driver and tests
can name them without reading a state machine. Times are ns on the agent's
clock, sizes bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hilnet.agent.cla.ltp_plan import PeerPlan
from hilnet.agent.cla.ltp_segment import Segment, encode
from hilnet.bundle.cos import DEFAULT_RANK

NS_PER_S = 1_000_000_000
BUNDLE_CLIENT = 1  # LTP client service id of the Bundle Protocol (as ION registers it)


@dataclass(frozen=True, slots=True)
class LtpSettings:
    """One LTP engine's settings (docs/cla.md, "LTP"). Times ns, sizes bytes."""

    engine_id: int
    segment_size: int = 1400  # client data octets per data segment: one segment fits a 1500-byte MTU
    max_block: int = 64 << 20  # largest block (= bundle) sent or accepted
    checkpoint_every: int = 1 << 20  # a discretionary checkpoint each time the first pass crosses a multiple of this
    max_export: int = 64  # export sessions open at once; more sends wait for one to close
    max_import: int = 64  # import sessions open at once; beyond it the longest-silent one is reclaimed
    rto_margin_ns: int = NS_PER_S  # added to the planned round trip: queueing and the peer's processing
    max_retries: int = 10  # retransmissions of one checkpoint, report or cancel segment before giving up
    idle_ns: int = 60 * NS_PER_S  # an import session silent this long + 2 round trips (peer able to send) ends
    rate: int = 0  # bytes/s to a peer the plan says nothing of (0: unpaced)
    rtt_ns: int = 0  # light time out and back to a peer the plan says nothing of
    closed_memory: int = 4096  # closed sessions remembered, to answer late reports and checkpoints


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer engine: its id, node id, UDP address and what the contact plan says of it."""

    engine: int
    node: str
    address: tuple[str, int]
    plan: PeerPlan = PeerPlan()


@dataclass(slots=True)
class Outgoing:
    """A segment waiting for its turn on the link; ``on_sent(now)`` starts its timer once it leaves."""

    peer: int
    datagram: bytes
    on_sent: Callable[[int], None] | None = None
    control: bool = False  # reports, acks, cancels and repairs go ahead of first-pass data
    dropped: bool = False  # its session closed before it left: skip it


@dataclass(slots=True)
class Lazy:
    """Segments to ``peer`` made only as the link takes them: a long block's first pass."""

    peer: int
    segments: Iterator[Outgoing]
    rank: int = DEFAULT_RANK  # class of service: a higher rank's first pass goes ahead of a lower one's


def outgoing(peer: int, seg: Segment, on_sent: Callable[[int], None] | None = None, *, control: bool) -> Outgoing:
    return Outgoing(peer, encode(seg), on_sent, control)


# --- events (what the engine tells its driver) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """The red part of import session (``engine``, ``session``) is complete; accept or refuse it."""

    engine: int
    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ExportDone:
    """The peer reported the whole block received: the send succeeded."""

    session: int


@dataclass(frozen=True, slots=True)
class ExportFailed:
    """Export session ``session`` was cancelled; ``reason`` says why. The sender keeps its bundle."""

    session: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportEnded:
    """Import session (``engine``, ``session``) closed; ``reason`` is "" when its block was delivered."""

    engine: int
    session: int
    reason: str


@dataclass(frozen=True, slots=True)
class Limited:
    """A resource limit refused or ended something (for the agent's ``limit`` event)."""

    limit: str
    detail: str
    peer: str | None = None


Event = BlockReceived | ExportDone | ExportFailed | ImportEnded | Limited


@dataclass(slots=True)
class Timer:
    """A retransmission timer of one segment: armed when the segment leaves, counting while the peer can answer."""

    out: Outgoing
    retries: int = 0
    deadline: int | None = None  # None: not armed (the segment waits to leave) or suspended for good
    armed: bool = False

    def arm(self, plan: PeerPlan, now: int, settings: LtpSettings) -> None:
        """Start counting the round trip plus the margin from ``now``, the instant the segment left."""
        self.armed = True
        rtt = plan.round_trip(now) if plan.planned else settings.rtt_ns
        self.deadline = plan.expiry(now, rtt + settings.rto_margin_ns)
