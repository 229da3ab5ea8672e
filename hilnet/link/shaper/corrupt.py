"""Bit errors at a bit-error rate.

Rather than a random draw per bit (1 Gbit/s would cost a billion draws a
second), the gap to the next errored bit is drawn from the geometric
distribution, and units are counted off against it. Serial: the errored bits
are flipped in the data, each counted. Ethernet and datagrams: a unit with any
error is dropped (reason ``corrupt``), as the receiver's FCS/checksum would.
"""

from __future__ import annotations

import math
import random

from hilnet.link.shaper.stage import DropFn, InstantStage
from hilnet.link.shaper.types import DirectionStats, Medium, Unit, error_bits


class Corrupt(InstantStage):
    __slots__ = ("_medium", "_rng", "_drop", "_stats", "ber", "_log_q", "_gap")

    def __init__(self, medium: Medium, rng: random.Random, drop: DropFn, stats: DirectionStats):
        super().__init__()
        self._medium = medium
        self._rng = rng
        self._drop = drop
        self._stats = stats
        self.ber = 0.0
        self._log_q = 0.0
        self._gap = 0  # error-free bits before the next errored bit

    def configure(self, ber: float) -> None:
        if ber == self.ber:
            return
        self.ber = ber
        if 0.0 < ber < 1.0:
            self._log_q = math.log1p(-ber)
        # The process is memoryless, so drawing a fresh gap at a change is exact.
        self._gap = self._draw_gap() if ber > 0.0 else 0

    def identity(self) -> bool:
        return self.ber == 0.0

    def _draw_gap(self) -> int:
        if self.ber >= 1.0:
            return 0
        u = 1.0 - self._rng.random()  # (0, 1]: log() stays finite
        return int(math.log(u) / self._log_q)

    def filter(self, unit: Unit, now_ns: int) -> Unit | None:
        serial = self._medium is Medium.SERIAL
        nbits = len(unit.data) * 8 if serial else error_bits(self._medium, len(unit.data))
        if self._gap >= nbits:
            self._gap -= nbits
            return unit
        pos = self._gap
        buf = bytearray(unit.data) if serial else None
        flips = 0
        while pos < nbits:
            if buf is not None:
                buf[pos >> 3] ^= 0x80 >> (pos & 7)
            flips += 1
            pos += 1 + self._draw_gap()
        self._gap = pos - nbits
        self._stats.bits_flipped += flips
        if buf is None:
            self._drop(unit, "corrupt", now_ns)
            return None
        return Unit(bytes(buf), unit.arrive_ns, unit.tag)
