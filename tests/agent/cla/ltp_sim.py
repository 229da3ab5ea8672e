"""Two LTP engines joined by an in-memory link with delay, seeded loss and planned windows, on a VirtualClock.

The link drops what is sent while its direction is closed (as the emulator's
gate does) and a seeded share of the rest; what passes arrives ``owlt`` later.
The harness plays the agent too: a received block is accepted (or refused)
at once, unless the test holds it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hilnet.agent.cla.ltp_engine import LtpEngine
from hilnet.agent.cla.ltp_plan import PeerPlan, peer_plan
from hilnet.agent.cla.ltp_segment import Segment, decode
from hilnet.agent.cla.ltp_session import (
    BlockReceived,
    Event,
    ExportDone,
    ExportFailed,
    LtpSettings,
    Peer,
)
from hilnet.clock import VirtualClock
from hilnet.scenario.contact import Contact

S = 1_000_000_000
A, B = 1, 2  # engine ids


def contacts(frm: str, to: str, spans: list[tuple[float, float]], rate: int, owlt_s: float) -> list[Contact]:
    return [Contact(frm, to, int(s * S), int(e * S), rate, int(owlt_s * S)) for s, e in spans]


@dataclass(frozen=True)
class Sent:
    t: int
    frm: int
    seg: Segment
    lost: bool


@dataclass
class Sim:
    owlt_s: float = 1.0
    loss: float = 0.0
    spans: list[tuple[float, float]] | None = None  # both directions open in these (s); None: always, no plan
    rate: int = 1_000_000  # bytes/s
    settings_a: LtpSettings = field(default_factory=lambda: LtpSettings(A))
    settings_b: LtpSettings = field(default_factory=lambda: LtpSettings(B))
    seed: int = 1
    back_spans: list[tuple[float, float]] | None = None  # B -> A windows when they differ from ``spans``
    drop: Callable[[int, bytes], bool] | None = None  # (from engine, datagram) -> drop it?

    def __post_init__(self) -> None:
        self.clock = VirtualClock()
        self.rng = random.Random(self.seed)
        plan = PeerPlan()
        if self.spans is not None:  # the plan as the agent gives it (peer_plan: windows end a light time early)
            back_spans = self.spans if self.back_spans is None else self.back_spans
            plan_contacts = contacts("a", "b", self.spans, self.rate, self.owlt_s)
            plan_contacts += contacts("b", "a", back_spans, self.rate, self.owlt_s)
            plan = peer_plan(plan_contacts, "a", "b", 0)
            plan_b = peer_plan(plan_contacts, "b", "a", 0)
        else:
            plan_b = plan
        rate = self.rate if self.spans is None else 0
        self.a = LtpEngine(
            _with_rate(self.settings_a, rate, int(2 * self.owlt_s * S)),
            {B: Peer(B, "ipn:2.0", ("b", 1), plan)},
            rng=random.Random(1),
        )
        self.b = LtpEngine(
            _with_rate(self.settings_b, rate, int(2 * self.owlt_s * S)),
            {A: Peer(A, "ipn:1.0", ("a", 1), plan_b)},
            rng=random.Random(2),
        )
        self.inflight: list[tuple[int, int, int, bytes]] = []  # (arrival, seq, to engine, datagram)
        self.seq = 0
        self.sent = {A: 0, B: 0}  # datagrams put on the link
        self.lost = {A: 0, B: 0}
        self.events: list[Event] = []
        self.trace: list[Sent] = []  # every segment put on the link, lost or not
        self.delivered: list[bytes] = []
        self.hold = False  # True: received blocks wait in .held instead of being accepted
        self.refuse = False
        self.held: list[BlockReceived] = []

    def open(self, t: int, frm: int = A) -> bool:
        """Whether a segment sent at ``t`` arrives: sent in a window and still in it on arrival (the link
        emulator loses what is in flight when a window closes)."""
        spans = self.back_spans if frm == B and self.back_spans is not None else self.spans
        arrive = t + int(self.owlt_s * S)
        return spans is None or any(int(s * S) <= t and arrive < int(e * S) for s, e in spans)

    def send(self, block: bytes) -> int:
        return self.a.send_block(B, block)

    def step(self) -> bool:
        """Advance to the next thing that happens; False when nothing ever will."""
        now = self.clock.now_ns()
        for eng, other in ((self.a, B), (self.b, A)):
            eng.tick(now)
            for out in eng.due(now):
                frm = eng.settings.engine_id
                self.sent[frm] += 1
                lost = not self.open(now, frm) or self.rng.random() < self.loss
                lost = lost or bool(self.drop and self.drop(frm, out.datagram))
                self.trace.append(Sent(now, frm, decode(out.datagram), lost))
                if lost:
                    self.lost[frm] += 1
                    continue
                self.seq += 1
                heapq.heappush(self.inflight, (now + int(self.owlt_s * S), self.seq, other, out.datagram))
        while self.inflight and self.inflight[0][0] <= now:
            _, _, to, dgram = heapq.heappop(self.inflight)
            (self.a if to == A else self.b).receive(dgram, now)
        self._events()
        times = [t for t in (self.a.next_wakeup(now), self.b.next_wakeup(now)) if t is not None]
        if self.inflight:
            times.append(self.inflight[0][0])
        if not times:
            return False
        self.clock.set(max(now, min(times)))  # work due now (just-queued segments): round again at once
        return True

    def _events(self) -> None:
        for ev in self.a.take_events() + self.b.take_events():
            self.events.append(ev)
            if isinstance(ev, BlockReceived):
                if self.hold:
                    self.held.append(ev)
                elif self.refuse:
                    self.b.refuse(ev.engine, ev.session, "store full")
                else:
                    self.delivered.append(ev.data)
                    self.b.accept(ev.engine, ev.session)

    def run(self, until_s: float = 10_000, stop: Callable[[], bool] | None = None) -> None:
        steps = 0
        while self.clock.now_ns() < until_s * S:
            if stop is not None and stop():
                return
            if not self.step():
                return
            steps += 1
            assert steps < 5_000_000, "the simulation does not settle"

    def outcome(self, number: int) -> ExportDone | ExportFailed | None:
        for ev in self.events:
            if isinstance(ev, ExportDone | ExportFailed) and ev.session == number:
                return ev
        return None


def _with_rate(s: LtpSettings, rate: int, rtt_ns: int) -> LtpSettings:
    from dataclasses import replace

    return replace(s, rate=rate, rtt_ns=rtt_ns)
