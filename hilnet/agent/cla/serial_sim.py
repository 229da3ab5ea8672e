"""Two serial CLA sessions on a modelled UART link, in virtual time.

Each direction of the line is the link emulator's own shaper
(:class:`hilnet.link.shaper.Direction` on a serial medium): **gate** (scripted
outages drop bytes, and a cut loses what is on the wire and in flight), **bit
errors** (seeded flips of data bits at a bit-error rate), **serialisation** at
the baud (``bits_per_byte`` line bits per byte) and **propagation delay**. So
the sessions meet exactly the line the emulator makes, without ptys or threads.
Runs are deterministic for a seed and take no real time; tests and
``benchmarks/serial_cla.py`` drive the real :class:`SerialSession` through it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
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
from hilnet.link.shaper import Direction, DirectionConfig, Medium, ScheduleEvent

# An outage of the line: (down from, up again at) in ns; None: it never comes back.
Outage = tuple[int, int | None]


class Channel:
    """One direction of a modelled UART line: a shaper direction fed and drained by :class:`SimLink`."""

    def __init__(self, config: SerialConfig, delay_ns: int, ber: float, seed: int, outages: Iterable[Outage] = ()):
        line = DirectionConfig(delay_ns=delay_ns, baud=config.baud, bits_per_byte=config.bits_per_byte, ber=ber)
        self._direction = Direction(line, Medium.SERIAL, seed=seed)
        for start, end in outages:
            self.outage(start, end)

    def outage(self, start_ns: int, end_ns: int | None = None) -> None:
        """Take the line down at ``start_ns`` and up again at ``end_ns`` (None: never)."""
        self._direction.schedule(ScheduleEvent(at_ns=start_ns, up=False))
        if end_ns is not None:
            self._direction.schedule(ScheduleEvent(at_ns=end_ns, up=True))

    @property
    def flipped(self) -> int:
        """Bits flipped by bit errors so far."""
        return self._direction.stats.bits_flipped

    @property
    def dropped(self) -> int:
        """Bytes lost so far (outages, cuts)."""
        return sum(self._direction.stats.drop_bytes.values())

    def send(self, data: bytes, now_ns: int) -> None:
        """Bytes written at ``now_ns``; they arrive after serialisation and delay."""
        self._direction.accept(data, now_ns)

    def next_ns(self) -> int | None:
        """When the line next has bytes to hand out or a scripted change, ns."""
        return self._direction.next_wake_ns()

    def receive(self, now_ns: int) -> bytes:
        """The bytes that have arrived by ``now_ns``, in order."""
        wake = self._direction.next_wake_ns()
        if wake is None or wake > now_ns:
            return b""  # nothing due: skip the direction's bookkeeping
        return b"".join(u.data for u in self._direction.pop_due(now_ns))


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
    """Sessions ``a`` and ``b`` joined by two channels; :meth:`run` advances virtual time.

    ``outages`` take both directions down at once, as a cut cable does; a test
    that needs one direction alone calls :meth:`Channel.outage` on ``ab`` or ``ba``.
    """

    def __init__(
        self,
        a: SerialConfig,
        b: SerialConfig,
        *,
        delay_ns: int,
        ber: float = 0.0,
        seed: int = 1,
        outages: Iterable[Outage] = (),
        start_ns: int = 0,
    ):
        rng = random.Random(seed)
        outages = tuple(outages)
        self.now_ns = start_ns
        self.a = End(SerialSession(a, start_ns, nonce=rng.getrandbits(32) | 1))
        self.b = End(SerialSession(b, start_ns, nonce=rng.getrandbits(32) | 1))
        self.ab = Channel(a, delay_ns, ber, rng.getrandbits(64), outages)
        self.ba = Channel(b, delay_ns, ber, rng.getrandbits(64), outages)

    def restart(self, which: str, config: SerialConfig, nonce: int) -> End:
        """Replace one side by a fresh session (a crashed and restarted agent)."""
        end = End(SerialSession(config, self.now_ns, nonce=nonce))
        setattr(self, which, end)
        return end

    def _step(self, end: End, inbound: Channel, outbound: Channel, due_ns: int | None) -> int | None:
        """Run ``end`` at ``now_ns`` if bytes arrived or it is due; returns its next deadline.

        ``due_ns`` is its deadline as of its last step (None: unknown). A session
        changes only when stepped, so until then that deadline holds, and a wake-up
        inside the line (a unit leaving the UART) costs this end nothing.
        """
        s = end.session
        data = inbound.receive(self.now_ns)
        if not data and due_ns is not None and due_ns > self.now_ns:
            return due_ns
        events = s.feed(data, self.now_ns) if data else s.tick(self.now_ns)
        while events:
            self._handle(end, events.pop(0))
            if not events:
                events = s.tick(self.now_ns)  # commits above queue FINAL acks
        out = s.data_to_send(self.now_ns)
        if out:
            outbound.send(out, self.now_ns)
        return s.next_deadline_ns()

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
        due_a = due_b = None  # sessions may have changed since the last run (sends, restarts)
        while self.now_ns <= until_ns:
            due_a = self._step(self.a, self.ba, self.ab, due_a)
            due_b = self._step(self.b, self.ab, self.ba, due_b)
            if stop():
                break
            times = [due_a, due_b, self.ab.next_ns(), self.ba.next_ns()]
            nxt = min(t for t in times if t is not None)
            self.now_ns = max(nxt, self.now_ns + 1)
        return self.now_ns
