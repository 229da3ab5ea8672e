"""Times of a UART link: serialisation at the baud, and round-trip estimation.

A UART at 8N1 sends 10 bits per byte (start, 8 data, stop), so ``baud``
symbols/s carry ``baud / 10`` bytes/s. Retransmission timeouts follow RFC 6298
(SRTT/RTTVAR, Karn's rule is the caller's), with the serialisation time of a
frame as the clock granularity, since no ack can come back sooner than the
frame takes to leave.
"""

from __future__ import annotations

from dataclasses import dataclass

from hilnet.units import BITS_PER_BYTE_8N1, check_bits_per_byte

NS_PER_S = 1_000_000_000
MAX_RTO_NS = 60 * NS_PER_S
MAX_BACKOFF = 64


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """Serialisation on one UART direction."""

    baud: int  # symbols/s (bits/s on the wire)
    bits_per_byte: int = BITS_PER_BYTE_8N1  # start + data + parity + stop bits: 10 for 8N1, 11 for 8N2

    def __post_init__(self) -> None:
        if self.baud <= 0:
            raise ValueError(f"baud must be above 0, got {self.baud}")
        check_bits_per_byte(self.bits_per_byte)  # UnitError, a ValueError

    @property
    def bytes_per_s(self) -> float:
        """Line rate in bytes/s (11,520 at 115200 baud, 8N1)."""
        return self.baud / self.bits_per_byte

    def wire_ns(self, n_bytes: int) -> int:
        """ns that ``n_bytes`` take to leave the UART at the baud."""
        return n_bytes * self.bits_per_byte * NS_PER_S // self.baud


class RttEstimator:
    """SRTT / RTTVAR / RTO after RFC 6298, in ns, with exponential backoff."""

    def __init__(self, initial_ns: int, granularity_ns: int, min_rto_ns: int):
        self.srtt_ns = initial_ns
        self.rttvar_ns = initial_ns // 2
        self.granularity_ns = granularity_ns
        self.min_rto_ns = min_rto_ns
        self.samples = 0
        self.backoff = 1

    def sample(self, rtt_ns: int) -> None:
        """Take one round-trip measurement (ns) of a segment sent only once."""
        if rtt_ns <= 0:
            return
        if self.samples == 0:
            self.srtt_ns = rtt_ns
            self.rttvar_ns = rtt_ns // 2
        else:
            self.rttvar_ns = (3 * self.rttvar_ns + abs(self.srtt_ns - rtt_ns)) // 4
            self.srtt_ns = (7 * self.srtt_ns + rtt_ns) // 8
        self.samples += 1
        self.backoff = 1

    def on_timeout(self) -> None:
        """A retransmission timer fired: back off (RFC 6298 5.5)."""
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def reset_backoff(self) -> None:
        self.backoff = 1

    def rto_ns(self) -> int:
        """Current retransmission timeout, ns."""
        base = self.srtt_ns + max(self.granularity_ns, 4 * self.rttvar_ns)
        return min(MAX_RTO_NS, max(self.min_rto_ns, base) * self.backoff)
