"""The values a link direction works with: units, media, configuration, events, counters.

All times are integer nanoseconds on the engine's clock; rates are bit/s;
sizes are bytes. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

from hilnet.errors import LinkError, UnitError
from hilnet.units import check_bits_per_byte

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Unit:
    """One Ethernet frame, one UDP datagram, or a run of serial/stream bytes."""

    data: bytes
    arrive_ns: int  # when the engine received it from the endpoint
    tag: object = None  # opaque to the shaper (the engine uses it, e.g. which TCP flow)


class Medium(Enum):
    """What a unit is on the wire; decides overheads and what an error does."""

    SERIAL = "serial"  # bytes; wire bits = bytes * bits_per_byte; errors flip bits
    ETHERNET = "ethernet"  # frames; + preamble/IFG/FCS; an error drops the frame
    DATAGRAM = "datagram"  # UDP payloads; + IP/UDP headers; an error drops the datagram
    STREAM = "stream"  # TCP relay: never drops; a down link stalls; no loss or errors


# Preamble + start delimiter (8) + inter-frame gap (12) + FCS (4), per frame.
ETHERNET_OVERHEAD_BYTES = 24
# A frame is padded to 64 bytes with its FCS, so to 60 bytes without.
ETHERNET_MIN_PAYLOAD_BYTES = 60
# IPv4 (20) + UDP (8) headers around a datagram's payload.
DATAGRAM_OVERHEAD_BYTES = 28


def wire_bits(medium: Medium, nbytes: int, bits_per_byte: int = 10) -> int:
    """Bits a unit of ``nbytes`` occupies on the line, overheads included."""
    if medium is Medium.ETHERNET:
        return (max(nbytes, ETHERNET_MIN_PAYLOAD_BYTES) + ETHERNET_OVERHEAD_BYTES) * 8
    if medium is Medium.SERIAL:
        return nbytes * bits_per_byte
    if medium is Medium.DATAGRAM:
        return (nbytes + DATAGRAM_OVERHEAD_BYTES) * 8
    return nbytes * 8


def error_bits(medium: Medium, nbytes: int) -> int:
    """Bits in which a bit error damages a unit.

    Serial: the data bits (an error in a start/stop bit is a framing error the
    UART reports, not modelled). Ethernet: the frame and its FCS, which the
    FCS check covers. Datagram: payload and IP/UDP headers.
    """
    if medium is Medium.ETHERNET:
        return (max(nbytes, ETHERNET_MIN_PAYLOAD_BYTES) + 4) * 8
    if medium is Medium.DATAGRAM:
        return (nbytes + DATAGRAM_OVERHEAD_BYTES) * 8
    return nbytes * 8


@dataclass(frozen=True, slots=True)
class DirectionConfig:
    """One direction of a link: the values in force at a moment.

    ``delay_ns``/``jitter_ns`` ns; ``rate_bps`` bit/s on the wire (None:
    unlimited); serial lines give ``baud`` (symbols/s, which wins over
    ``rate_bps``) and ``bits_per_byte`` (8N1: 10); ``loss`` and ``ber`` are
    probabilities; ``gilbert`` is (p_good_to_bad, p_bad_to_good, loss_good,
    loss_bad) and replaces ``loss`` when set; queue limits in bytes / units.
    """

    delay_ns: int = 0
    jitter_ns: int = 0
    reorder: bool = False
    rate_bps: int | None = None
    baud: int | None = None
    bits_per_byte: int = 10
    loss: float = 0.0
    gilbert: tuple[float, float, float, float] | None = None
    ber: float = 0.0
    queue_bytes: int | None = None
    queue_units: int | None = None
    up: bool = True

    def __post_init__(self) -> None:
        if self.delay_ns < 0 or self.jitter_ns < 0:
            raise LinkError(f"delay and jitter must be >= 0 ns, got {self.delay_ns} and {self.jitter_ns}")
        for name, least in (("rate_bps", 1), ("baud", 1), ("queue_bytes", 0), ("queue_units", 0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
                raise LinkError(f"{name} must be an integer >= {least} or None, got {v!r}")
        try:
            check_bits_per_byte(self.bits_per_byte)
        except UnitError as e:
            raise LinkError(f"bits_per_byte: {e}") from None
        probs = [("loss", self.loss), ("ber", self.ber)]
        if self.gilbert is not None:
            if len(self.gilbert) != 4:
                raise LinkError(f"gilbert is (p_good_to_bad, p_bad_to_good, loss_good, loss_bad), got {self.gilbert!r}")
            probs += list(zip(("p_good_to_bad", "p_bad_to_good", "loss_good", "loss_bad"), self.gilbert))
        for name, p in probs:
            if not 0.0 <= p <= 1.0:
                raise LinkError(f"{name} must be a probability in [0, 1], got {p!r}")

    def line_rate_bps(self) -> int | None:
        """Bits per second the line carries: the baud if given, else the rate."""
        return self.baud if self.baud is not None else self.rate_bps


CONFIG_FIELDS = frozenset(f.name for f in fields(DirectionConfig))


@dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """Something scripted at an exact instant (engine clock, ns).

    ``up`` changes the gate (None: leave it); ``changes`` maps DirectionConfig
    field names to new values, applied at the same instant.

    A gate closing always loses the queue and the unit half on the wire. What
    has already left the transmitter is lost too (a cable pulled, a cut), unless
    ``keep_in_flight``: a planned window's end, where light already on its way
    still arrives a light time later, as the contact plan counts it (with a
    20-minute light time, that is the last 20 minutes of a pass).
    """

    at_ns: int
    up: bool | None = None
    changes: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    keep_in_flight: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.changes) - CONFIG_FIELDS
        if unknown:
            raise LinkError(f"schedule event at {self.at_ns} ns changes unknown fields {sorted(unknown)}")
        if "up" in self.changes:
            raise LinkError("a schedule event sets the gate with up=..., not in changes")
        if not isinstance(self.changes, MappingProxyType):
            object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))

    def applied_to(self, config: DirectionConfig) -> DirectionConfig:
        """``config`` as it is after this event: its changes made, its gate setting taken."""
        if self.changes:
            changes: dict[str, Any] = dict(self.changes)  # names checked against CONFIG_FIELDS above
            config = replace(config, **changes)
        if self.up is not None and self.up != config.up:
            config = replace(config, up=self.up)
        return config


@dataclass(frozen=True, slots=True)
class GateTransition:
    """A gate change as scripted (``intended_ns``) and as carried out.

    ``applied_ns`` is the engine time of the call that carried it out, so
    ``applied_ns - intended_ns`` is how late the driver woke (schedule fidelity).
    """

    up: bool
    intended_ns: int
    applied_ns: int


DROP_REASONS = ("down", "loss", "corrupt", "queue-full", "cut-in-flight", "oversize")


@dataclass(slots=True)
class DirectionStats:
    """Counters of one direction; mutable, read by the engine and reports."""

    units_in: int = 0
    bytes_in: int = 0
    units_out: int = 0
    bytes_out: int = 0
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    drop_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    bits_flipped: int = 0
    transitions: list[GateTransition] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Units dropped for any reason."""
        return sum(self.drops.values())
