"""The verdict of a run: what the checks produce and the reports read.

Plain frozen values, no I/O and no knowledge of how they were computed, so
that ``report/`` depends on this module and never on ``controller/``. A
bundle's sightings are the ledger's (:class:`hilnet.ledger.Sighting`).
Times are nanoseconds: scenario time for bundles, wall time for link edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hilnet.ledger import Drop, Sighting


@dataclass(frozen=True, slots=True)
class BundleRecord:
    """Everything the log says about one injected bundle. Times: scenario ns."""

    tag: str  # "photos#3"
    traffic: str
    frm: str
    to: str
    key: str | None  # bundle id text; None if the injection failed
    size: int
    injected_ns: int
    expected_sha256: str
    delivered_ns: int | None = None
    deliveries: int = 0
    intact: bool | None = None  # None: never delivered
    plan_arrival_ns: int | None = None  # the oracle: earliest arrival the plan and the faults allow, alone
    expired: bool = False
    stored_at: tuple[str, ...] = ()  # nodes holding it at the end of the run
    sightings: tuple[Sighting, ...] = ()
    priority: str = "normal"  # class of service: bulk, normal or expedited
    ordinal: int = 0  # order inside expedited, higher first
    dropped: Drop | None = None  # the agent that ended it and why (or, not injected, the source's refusal)
    injection_failure: str | None = None  # why the controller could not inject it
    # nodes that may still hold it but whose stack cannot tell (ledger.unaccounted_at); () where every stack can
    unobservable_at: tuple[str, ...] = ()

    @property
    def latency_ns(self) -> int | None:
        return None if self.delivered_ns is None else self.delivered_ns - self.injected_ns

    @property
    def lateness_ns(self) -> int | None:
        """Delivery minus the plan's earliest arrival (>= 0 unless the plan was pessimistic)."""
        if self.delivered_ns is None or self.plan_arrival_ns is None:
            return None
        return self.delivered_ns - self.plan_arrival_ns

    @property
    def last_seen(self) -> Sighting | None:
        return self.sightings[-1] if self.sightings else None

    @property
    def fate(self) -> str:
        """delivered, stored, expired, dropped (an agent ended it, with a reason), refused (its
        source agent would not take it in), not-injected (the injection failed otherwise),
        not-observable (it may be held where the node's stack cannot tell) or lost (it
        vanished without any event saying so)."""
        if self.key is None:  # never in the network to lose
            return "refused" if self.dropped is not None else "not-injected"
        if self.deliveries:
            return "delivered"
        if self.stored_at:
            return "stored"
        if self.expired:
            return "expired"
        if self.dropped is not None:
            return "dropped"
        if self.unobservable_at:
            return "not-observable"  # held or lost where the stack cannot say: not counted as lost
        return "lost"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str  # delivered, within, within-plan, duplicates, intact, lost; "within STREAM", "within-plan STREAM"
    passed: bool
    expected: str
    actual: str
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EdgeTiming:
    """One scripted link change: when it was meant to happen and when it did (wall ns)."""

    link: str
    direction: str
    what: str
    intended_ns: int
    applied_ns: int

    @property
    def error_ns(self) -> int:
        return self.applied_ns - self.intended_ns


@dataclass(frozen=True, slots=True)
class RemotePort:
    """A link end served over a network (``rfc2217://``) and what that network adds, µs.

    ``rtt_us`` and ``rttvar_us`` are the kernel's estimates for the TCP
    connection to the port's server at the end of the run (RFC 6298): the
    variation is the jitter every byte of that port carries, which a local
    UART does not. None where the host cannot tell."""

    link: str
    end: str  # "a" or "b"
    server: str  # host:port
    rtt_us: int | None
    rttvar_us: int | None


@dataclass(frozen=True, slots=True)
class Fidelity:
    edges: tuple[EdgeTiming, ...]
    p50_ns: int | None
    p99_ns: int | None
    max_ns: int | None
    remote: tuple[RemotePort, ...] = ()  # link ends behind a network, and its jitter


@dataclass(frozen=True, slots=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    bundles: tuple[BundleRecord, ...]
    fidelity: Fidelity
    end_ns: int  # scenario time the run ended
    end_reason: str
    streams: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # traffic -> (delivered, injected)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)
