"""The scenario as frozen, typed values: what ``load.py`` builds and everything else reads.

All times are integer nanoseconds of *scenario* time (divide by ``clock.scale``
for wall time); delay and jitter are physics, as the file gives them: what they
become on the wall clock is ``clock.compress``'s business (:mod:`hilnet.scenario.wall`). Rates are
bit/s, baud is symbols/s, sizes are bytes, probabilities are floats in [0, 1].
The loader has already checked every cross-reference (link ends, traffic
endpoints, fault targets), so code that reads a :class:`Scenario` can trust it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hilnet.scenario.geometry.positions import LinkGeometry, Position

Medium = Literal["serial", "ethernet"]
# The convergence layer the nodes speak over a link (docs/scenario.md, docs/cla.md): TCPCLv4 (RFC 9174),
# TCPCLv3 (RFC 7242, ION's TCP CL), LTP over UDP (RFC 5326/7122) on Ethernet; the serial CL on serial.
# The DTN software a node runs (docs/stacks.md); each has a driver in hilnet.stacks.registry.
STACKS: tuple[str, ...] = ("hilnet", "ion")
ConvergenceLayer = Literal["tcpcl", "tcpclv3", "ltp", "serial"]
CLS_BY_MEDIUM: Mapping[Medium, tuple[ConvergenceLayer, ...]] = {
    "ethernet": ("tcpcl", "tcpclv3", "ltp"),
    "serial": ("serial",),
}  # the first of each medium is its default
# What hilnet can set up in each stack besides its links (docs/stacks.md): BPSec from its key files, TCPCLv4 TLS.
STACK_TAKES: Mapping[str, frozenset[str]] = {"hilnet": frozenset({"keys", "tls", "security"}), "ion": frozenset()}
# The convergence layers each stack speaks (docs/stacks.md): ION 4.1.3 has no TCPCLv4 and no serial CL.
STACK_CLS: Mapping[str, tuple[ConvergenceLayer, ...]] = {
    "hilnet": ("tcpcl", "tcpclv3", "ltp", "serial"),
    "ion": ("tcpclv3", "ltp"),
}
Direction = Literal["both", "forward", "backward"]
OneWay = Literal["forward", "backward"]
Priority = Literal["bulk", "normal", "expedited"]
TlsMode = Literal["off", "enable", "require"]  # TCPCLv4 TLS policy of a node (docs/cla.md)
TLS_MODES: tuple[TlsMode, ...] = ("off", "enable", "require")
Compress = Literal["schedule", "all"]  # what clock.scale compresses (hilnet.units, "time compression")


@dataclass(frozen=True, slots=True)
class ClockSpec:
    scale: float  # scenario seconds per wall second (60: a scenario minute per wall second)
    duration_ns: int  # scenario time the run lasts; hilnet.units.scenario_to_wall_ns converts to wall time
    epoch: str | None = None  # UTC instant of scenario time 0 (ISO 8601, "2024-03-01T12:00:00Z"), if given
    epoch_unix_ns: int | None = None  # the same instant, ns since the Unix epoch
    compress: Compress = "schedule"  # "all": delay, jitter, rate and baud are compressed by the scale too
    # True once hilnet.scenario.wall.in_wall_terms has put the links' physics in wall terms
    # (so it is done once, whoever asks again).
    physics_wall: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    eid: str  # node id: ``ipn:N.0`` or ``dtn://name/`` (read it with hilnet.bundle.eid.parse_eid)
    keys: str | None = None  # a BPSec key file to use instead of the run's generated one (absolute path)
    position: Position | None = None  # where it is, when the scenario says (orbits, stations)
    tls: TlsMode | None = None  # None: the scenario's default, else the backend's
    stack: str = "hilnet"  # one of STACKS: the software that plays the node


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state burst loss: good -> bad with probability ``p`` per unit, bad -> good with ``r``."""

    p: float
    r: float
    loss_good: float = 0.0  # loss probability while in the good state
    loss_bad: float = 1.0  # loss probability while in the bad state


LossModel = Literal["bernoulli"] | GilbertElliott


@dataclass(frozen=True, slots=True)
class DirectionParams:
    """How one direction of a link treats its traffic."""

    delay_ns: int = 0  # one-way propagation delay
    jitter_ns: int = 0  # delay varies uniformly in [delay - jitter, delay + jitter]
    rate_bps: int | None = None  # ethernet: bit/s on the wire; None for serial
    baud: int | None = None  # serial: symbols/s; None for ethernet
    bits_per_byte: int = 0  # serial 8N1: 10 (start + 8 data + stop); 0 for ethernet
    loss: float = 0.0  # probability a unit (frame, serial chunk) is dropped
    loss_model: LossModel = "bernoulli"
    ber: float = 0.0  # bit error rate: probability each bit is flipped
    queue_bytes: int | None = None  # tail-drop limit of the queue before serialisation
    queue_units: int | None = None  # same, counted in frames / serial chunks
    reorder: bool = False  # with jitter, may units overtake each other?

    def updated(self, fields: Mapping[str, Any]) -> DirectionParams:
        """A copy with the named fields set, such as a :class:`Change`'s ``params``.

        ``fields`` maps field names to values of the field's type (the loader
        checked them); a name that is not a field raises TypeError.
        """
        return replace(self, **fields)

    @property
    def wire_bytes_per_s(self) -> float:
        """Raw bytes/s the medium moves (before any framing or protocol overhead)."""
        if self.baud is not None:
            return self.baud / (self.bits_per_byte or 10)
        return (self.rate_bps or 0) / 8


@dataclass(frozen=True, slots=True)
class Window:
    start_ns: int
    end_ns: int

    @property
    def length_ns(self) -> int:
        return self.end_ns - self.start_ns


def merged_windows(windows: tuple[Window, ...]) -> tuple[Window, ...]:
    """Windows sorted, overlapping or touching ones joined: 0m-38m and 38m-85m are one stretch of up."""
    out: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start_ns):
        if out and w.start_ns <= out[-1].end_ns:
            out[-1] = Window(out[-1].start_ns, max(out[-1].end_ns, w.end_ns))
        else:
            out.append(w)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Change:
    """At ``at_ns``, the named DirectionParams fields of ``direction`` take new values."""

    at_ns: int
    direction: Direction
    params: Mapping[str, object]  # DirectionParams field name -> new value (read-only)


@dataclass(frozen=True, slots=True)
class Pacing:
    """A rate or baud a link runs at, and where the file says so: what the wall-terms check points at."""

    field: Literal["rate_bps", "baud"]
    value: int  # bit/s or baud, physical
    what: str  # "link 'mro-dsn' rate", "link 'uhf' baud (the default)"
    line: int = 0
    col: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    a: str
    b: str
    medium: Medium
    forward: DirectionParams  # a -> b
    backward: DirectionParams  # b -> a
    windows: tuple[Window, ...] = ()  # when the link is up in either direction (sorted); empty: up the whole run
    changes: tuple[Change, ...] = ()  # sorted by at_ns
    # Per-direction windows (forward, backward) when a direction has its own ``up:``:
    # when each direction carries bundles; () never. None: both follow ``windows``.
    directed: tuple[tuple[Window, ...], tuple[Window, ...]] | None = None
    # What geometry computed (``up: line-of-sight``, ``delay: light-time``); the windows and
    # delay changes above already hold it, this keeps the passes for plan and geometry views.
    geometry: LinkGeometry | None = None
    cl: ConvergenceLayer | None = None  # None: the medium's default (see ``convergence_layer``)
    # Every rate or baud this link runs at, with its place in the file (not part of the link's identity).
    pacing: tuple[Pacing, ...] = field(default=(), compare=False)

    @property
    def convergence_layer(self) -> ConvergenceLayer:
        """The CL the ends speak: ``cl`` as written, else the medium's default (TCPCLv4, serial)."""
        return self.cl or CLS_BY_MEDIUM[self.medium][0]

    def direction(self, frm: str) -> DirectionParams:
        """Parameters of the direction that leaves node ``frm``."""
        if frm == self.a:
            return self.forward
        if frm == self.b:
            return self.backward
        raise KeyError(f"{frm} is not an end of link {self.name}")

    def other(self, node: str) -> str:
        return self.b if node == self.a else self.a

    @property
    def one_way(self) -> bool:
        """Whether the two directions have windows of their own (see ``directed``)."""
        return self.directed is not None

    def windows_of(self, direction: OneWay) -> tuple[Window, ...] | None:
        """When ``direction`` (forward a->b, backward b->a) carries bundles; None: the whole run."""
        if self.directed is None:
            return self.windows or None
        return self.directed[0] if direction == "forward" else self.directed[1]


@dataclass(frozen=True, slots=True)
class StreamExpect:
    """What one traffic stream promises beyond the run's ``expect`` (both must hold); None: not checked."""

    within_ns: int | None = None  # each delivery of the stream no later than this after its injection
    within_plan: float | int | None = None  # as Expect.within_plan, for the stream's bundles


@dataclass(frozen=True, slots=True)
class Traffic:
    """``count`` bundles of ``size`` payload bytes from ``frm`` to ``to``."""

    name: str
    frm: str
    to: str
    start_ns: int
    every_ns: int | None  # None: one-shot (all ``count`` at ``start_ns``)
    count: int
    size: int  # payload bytes per bundle
    lifetime_ns: int  # BPv7 lifetime of each bundle
    priority: Priority = "normal"
    ordinal: int = 0  # 0..254, orders expedited traffic (higher first); see docs/scenario.md
    integrity: str | None = None  # BPSec BIB-HMAC-SHA2 variant (hmac-sha384...); None: no BIB
    confidentiality: str | None = None  # BPSec BCB-AES-GCM variant (aes256-gcm...); None: no BCB
    expect: StreamExpect | None = None  # the stream's own expectations, if it states any
    hop_limit: int | None = None  # 1..255; None: the plan's default (hilnet.scenario.hops)

    def times_ns(self) -> tuple[int, ...]:
        """Scenario times of each injection, in order."""
        step = self.every_ns or 0
        return tuple(self.start_ns + i * step for i in range(self.count))


@dataclass(frozen=True, slots=True)
class Cut:
    """An unplanned outage: ``link`` is down from ``at_ns`` for ``for_ns``."""

    at_ns: int
    link: str
    for_ns: int


@dataclass(frozen=True, slots=True)
class Crash:
    """The agent of ``node`` is killed (SIGKILL) at ``at_ns``; restarted after a delay or never."""

    at_ns: int
    node: str
    restart_after_ns: int | None
    line: int = 0  # where the fault is written, for a refusal that comes after loading (a stack that cannot crash)
    col: int = 0


@dataclass(frozen=True, slots=True)
class ErrorBurst:
    """Both directions of ``link`` suffer bit error rate ``ber`` from ``at_ns`` for ``for_ns``."""

    at_ns: int
    link: str
    for_ns: int
    ber: float


@dataclass(frozen=True, slots=True)
class PowerCut:
    """The board playing ``node`` loses power at ``at_ns`` for ``for_ns`` (a bench with power commands only).

    ``line``/``col`` say where the fault is written, for the bench check that refuses it without power commands.
    """

    at_ns: int
    node: str
    for_ns: int
    line: int = 0
    col: int = 0


Fault = Cut | Crash | ErrorBurst | PowerCut


@dataclass(frozen=True, slots=True)
class Expect:
    delivered: Literal["all"] | int | float = "all"  # int: a count; float: a fraction (0, 1]
    within_ns: int | None = None  # every delivery no later than this after its injection
    within_plan: float | int | None = None  # float: factor x plan's earliest arrival; int: ns slack
    duplicates: int | None = 0  # None: not checked
    intact: bool = True
    lost: int | None = 0  # None: not checked
    fidelity_ns: int | None = None  # each link change applied within this of its time; None: the backend's default


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    version: int
    seed: int
    clock: ClockSpec
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    traffic: tuple[Traffic, ...]
    faults: tuple[Fault, ...]  # sorted by at_ns
    expect: Expect
    source: str = "<scenario>"  # file the scenario was read from
    tls: TlsMode | None = None  # default TLS policy of the nodes; None: the backend's (off locally, require on a bench)

    def tls_of(self, node: str, backend_default: TlsMode) -> TlsMode:
        """The TLS policy node ``node`` runs with: its own, else the scenario's, else ``backend_default``."""
        return self.node(node).tls or self.tls or backend_default

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def bundles_total(self) -> int:
        """How many bundles the traffic section injects."""
        return sum(t.count for t in self.traffic)
