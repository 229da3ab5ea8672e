"""Two serial CLA sessions on a modelled UART link, in virtual time.

The channel model is the one the link emulator applies, reduced to what a
byte stream sees: per direction a **gate** (scripted outages drop bytes),
**serialisation** at the baud (10 bits per byte, ``depart = max(arrive,
busy) + bytes * 10 / baud``), **bit errors** (independent flips of data bits at
a bit-error rate, from a seeded RNG) and **propagation delay**. Runs are
deterministic for a seed and take no real time; tests and
``benchmarks/serial_cla.py`` drive the real :class:`SerialSession` through it.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from hilnet.agent.cla.serial_frame import RefuseReason
from hilnet.agent.cla.serial_proto import (
    BundleAcked,
    BundleReceived,
    BundleRefused,
    Event,
    SerialConfig,
    SerialSession,
)
from hilnet.agent.cla.serial_timing import LinkTiming

CHUNK = 64  # bytes per unit on the modelled line: the far end sees frames arrive piecewise


class Channel:
    """One direction of a modelled UART line."""

    def __init__(
        self, baud: int, delay_ns: int, ber: float, rng: random.Random, up: Callable[[int], bool] = lambda t: True
    ):
        self.timing = LinkTiming(baud)
        self.delay_ns = delay_ns
        self.ber = ber
        self.rng = rng
        self.up = up
        self.busy_ns = 0
        self.flipped = 0
        self.dropped = 0
        self._queue: list[tuple[int, int, bytes]] = []
        self._n = 0
        self._bits_to_error = self._gap()

    def _gap(self) -> int:
        if self.ber <= 0:
            return math.inf  # type: ignore[return-value]
        return int(math.log(1.0 - self.rng.random()) / math.log1p(-self.ber))

    def send(self, data: bytes, now_ns: int) -> None:
        """Bytes written at ``now_ns``; they arrive after serialisation and delay."""
        for off in range(0, len(data), CHUNK):
            chunk = bytearray(data[off : off + CHUNK])
            start = max(now_ns, self.busy_ns)
            self.busy_ns = start + self.timing.wire_ns(len(chunk))
            if not (self.up(start) and self.up(self.busy_ns)):
                self.dropped += len(chunk)
                continue
            bits = 8 * len(chunk)
            while self._bits_to_error < bits:
                pos = self._bits_to_error
                chunk[pos // 8] ^= 1 << (pos % 8)
                self.flipped += 1
                self._bits_to_error += 1 + self._gap()
            self._bits_to_error -= bits
            self._n += 1
            heapq.heappush(self._queue, (self.busy_ns + self.delay_ns, self._n, bytes(chunk)))

    def next_ns(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def receive(self, now_ns: int) -> bytes:
        out = []
        while self._queue and self._queue[0][0] <= now_ns:
            out.append(heapq.heappop(self._queue)[2])
        return b"".join(out)


@dataclass
class End:
    """One side: its session and what happened to it."""

    session: SerialSession
    received: list[bytes] = field(default_factory=list)
    acked: dict[Hashable, int] = field(default_factory=dict)  # bundle id -> ns
    refused: list[tuple[Hashable, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Whether the agent takes a bundle: True commits, False refuses (store full).
    accept: Callable[[bytes], bool] = lambda data: True


class SimLink:
    """Sessions ``a`` and ``b`` joined by two channels; :meth:`run` advances virtual time."""

    def __init__(
        self,
        a: SerialConfig,
        b: SerialConfig,
        *,
        delay_ns: int,
        ber: float = 0.0,
        seed: int = 1,
        up: Callable[[int], bool] = lambda t: True,
        start_ns: int = 0,
    ):
        rng = random.Random(seed)
        self.now_ns = start_ns
        self.a = End(SerialSession(a, start_ns, nonce=rng.getrandbits(32) | 1))
        self.b = End(SerialSession(b, start_ns, nonce=rng.getrandbits(32) | 1))
        self.ab = Channel(a.baud, delay_ns, ber, random.Random(rng.random()), up)
        self.ba = Channel(b.baud, delay_ns, ber, random.Random(rng.random()), up)

    def restart(self, which: str, config: SerialConfig, nonce: int) -> End:
        """Replace one side by a fresh session (a crashed and restarted agent)."""
        end = End(SerialSession(config, self.now_ns, nonce=nonce))
        setattr(self, which, end)
        return end

    def _step(self, end: End, inbound: Channel, outbound: Channel) -> None:
        s = end.session
        data = inbound.receive(self.now_ns)
        events = s.feed(data, self.now_ns) if data else s.tick(self.now_ns)
        while events:
            self._handle(end, events.pop(0))
            if not events:
                events = s.tick(self.now_ns)  # commits above queue FINAL acks
        out = s.data_to_send(self.now_ns)
        if out:
            outbound.send(out, self.now_ns)

    def _handle(self, end: End, ev: Event) -> None:
        s = end.session
        end.events.append(ev)
        if isinstance(ev, BundleReceived):
            if end.accept(ev.data):
                end.received.append(ev.data)
                s.commit(ev.key)
            else:
                s.refuse(ev.key, RefuseReason.STORE_FULL)
        elif isinstance(ev, BundleAcked):
            end.acked[ev.bundle_id] = self.now_ns
        elif isinstance(ev, BundleRefused):
            end.refused.append((ev.bundle_id, ev.reason))

    def run(self, until_ns: int, stop: Callable[[], bool] = lambda: False) -> int:
        """Advance to ``until_ns`` (or until ``stop()``); returns the time reached, ns."""
        while self.now_ns <= until_ns:
            self._step(self.a, self.ba, self.ab)
            self._step(self.b, self.ab, self.ba)
            if stop():
                break
            times = [
                self.a.session.next_deadline_ns(),
                self.b.session.next_deadline_ns(),
                self.ab.next_ns(),
                self.ba.next_ns(),
            ]
            nxt = min(t for t in times if t is not None)
            self.now_ns = max(nxt, self.now_ns + 1)
        return self.now_ns
