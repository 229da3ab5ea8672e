"""Bad and hostile input into the LTP engine: nothing escapes, memory stays bounded, real sessions complete."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from ltp_sim import A, B, S, Sim

from hilnet.agent.cla.budget import Holding, MemoryBudget
from hilnet.agent.cla.ltp_engine import LtpEngine
from hilnet.agent.cla.ltp_segment import (
    Cancel,
    CancelAck,
    CancelReason,
    Claim,
    DataSeg,
    ReportAck,
    ReportSeg,
    Segment,
    SegType,
    encode,
)
from hilnet.agent.cla.ltp_session import ExportDone, ExportFailed, LtpSettings, Peer


def engine(budget: MemoryBudget | None = None, **kw: int) -> LtpEngine:
    return LtpEngine(
        LtpSettings(B, **kw), {A: Peer(A, "ipn:1.0", ("a", 1))}, holding=lambda peer: Holding(budget, None, peer)
    )


def valid_datagrams() -> list[bytes]:
    """What a sender and a receiver put on a link in one short session, both ways."""
    sim = Sim(loss=0.2, seed=3)
    sim.send(random.Random(1).randbytes(9000))
    sim.run()
    return [encode(t.seg) for t in sim.trace]


VALID = valid_datagrams()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_datagrams_never_raise(data: bytes) -> None:
    e = engine()
    e.receive(data, 0)
    e.tick(10**12)
    e.due(10**12)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_segments_never_raise(draw: st.DataObject) -> None:
    e = engine()
    for dgram in draw.draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=8)):
        b = bytearray(dgram)
        for _ in range(draw.draw(st.integers(0, 4))):
            b[draw.draw(st.integers(0, len(b) - 1))] = draw.draw(st.integers(0, 255))
        cut = draw.draw(st.integers(0, len(b)))
        e.receive(bytes(b[:cut]) + draw.draw(st.binary(max_size=4)), draw.draw(st.integers(0, 10 * S)))
    e.tick(10**13)
    e.due(10**13)


def test_lengths_past_the_end_claims_out_of_range_and_unknown_sessions_are_counted() -> None:
    # A is our engine here (sender side), B the peer that reports
    a = LtpEngine(LtpSettings(A), {B: Peer(B, "ipn:2.0", ("b", 1))})
    n = a.send_block(B, b"x" * 5000)
    cases = [
        bytes.fromhex("00 01 01 00 01 00 ff7f 6162"),  # data length far past the datagram
        encode(Segment(SegType.REPORT, A, n, ReportSeg(1, 1, 9000, 0, (Claim(0, 9000),)))),  # past the block
        encode(Segment(SegType.REPORT, A, n, ReportSeg(2, 1, 100, 0, (Claim(50, 10), Claim(0, 10))))),
        encode(Segment(SegType.REPORT, A, n + 1000, ReportSeg(3, 1, 10, 0, ()))),  # no such session
        encode(Segment(SegType.REPORT, 99, n, ReportSeg(4, 1, 10, 0, ()))),  # not our session
        encode(Segment(SegType.RED, 99, 5, DataSeg(1, 0, b"zz"))),  # an engine we do not know
        encode(Segment(SegType.REPORT_ACK, B, 77, ReportAck(1))),  # ack of a report never sent
        encode(Segment(SegType.CANCEL_ACK_TO_SENDER, A, n + 5, CancelAck())),
    ]
    for c in cases:
        a.receive(c, 0)
    assert a.stats["length_past_end"] == 1
    assert a.stats["claim_out_of_range"] == 1
    assert a.stats["claims_out_of_order"] == 1
    assert a.stats["unknown_session"] == 3
    assert a.stats["not_our_session"] == 1
    assert a.stats["unknown_engine"] == 1
    assert n in a.exports  # the real session is untouched


def _bogus(rng: random.Random, i: int) -> bytes:
    kind = i % 4
    number = rng.randrange(1, 1 << 31)
    if kind == 0:  # a data segment far into a huge block: buffers would grow if it were believed
        return encode(Segment(SegType.RED, A, number, DataSeg(1, rng.randrange(0, 60 << 20), b"q" * 1000)))
    if kind == 1:  # a checkpoint of a session never begun
        return encode(Segment(SegType.RED_CP_EORP_EOB, A, number, DataSeg(1, 100, b"q" * 500, 7, 0)))
    if kind == 2:
        return encode(Segment(SegType.CANCEL_FROM_SENDER, A, number, Cancel(CancelReason.USR_CNCLD)))
    return encode(Segment(SegType.RED, A, number, DataSeg(1, rng.randrange(0, 1 << 20), b"q" * 1400)))


def test_ten_thousand_bogus_sessions_cost_bounded_memory_and_a_real_session_still_completes() -> None:
    budget = MemoryBudget(8 << 20)
    sim = Sim(seed=5)
    sim.b = engine(budget, max_import=32, rtt_ns=2 * S)  # the receiver under attack, with the agent's budget
    rng = random.Random(11)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(10_000):
        sim.b.receive(_bogus(rng, i), sim.clock.now_ns())
        sim.b.tick(sim.clock.now_ns())
        sim.b.due(sim.clock.now_ns())  # its answers (cancel acks) leave
        if i % 100 == 99:
            sim.clock.advance(S // 2)
        assert len(sim.b.imports) <= 32
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert budget.used <= budget.limit
    assert grown < 16 << 20, f"10,000 bogus sessions kept {grown} bytes"
    assert sim.b.stats["import_reclaimed"] > 0
    # A real session now, while more bogus segments keep coming.
    blk = random.Random(2).randbytes(50_000)
    n = sim.send(blk)
    for i in range(200):
        sim.b.receive(_bogus(rng, i), sim.clock.now_ns())
        sim.step()
    sim.run()
    tries = 1
    while isinstance(sim.outcome(n), ExportFailed) and tries < 5:  # as the agent does: stored, sent again
        n = sim.send(blk)
        sim.run()
        tries += 1
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [blk]


def test_a_stalled_block_gives_its_budget_back_to_one_that_flows() -> None:
    sim = Sim(seed=6)
    budget = MemoryBudget(4 << 20, sim.clock)
    sim.b = engine(budget, rtt_ns=2 * S)
    for off in range(0, 3 << 20, 1400):  # a sender that stops after 3 MiB of a block: its session stalls
        sim.b.receive(encode(Segment(SegType.RED, A, 4242, DataSeg(1, off, b"s" * 1400))), 0)
    assert budget.used >= 3 << 20
    sim.clock.set(20 * S)
    blk = random.Random(3).randbytes(2 << 20)
    n = sim.send(blk)
    sim.run()
    assert sim.outcome(n) == ExportDone(n) and sim.delivered == [blk]
    assert sim.b.stats["import_evicted"] == 1
    assert budget.used == 0  # all handed over or given back
