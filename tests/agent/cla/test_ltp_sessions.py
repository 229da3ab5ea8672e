"""LTP session state machines on a VirtualClock: two engines joined by an in-memory link (ltp_sim)."""

from __future__ import annotations

import random

from ltp_sim import A, B, S, Sim

from hilnet.agent.cla.ltp_segment import Cancel, CancelReason, DataSeg, ReportSeg, SegType, decode
from hilnet.agent.cla.ltp_session import ExportDone, ExportFailed, LtpSettings
from hilnet.bundle.cos import Priority, rank_of

SEG = 1400


def block(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def data_of(sim: Sim, frm: int = A) -> list[tuple[int, int, bool]]:
    """(offset, length, lost) of every data segment ``frm`` put on the link, in order."""
    return [
        (t.seg.content.offset, len(t.seg.content.data), t.lost)
        for t in sim.trace
        if t.frm == frm and isinstance(t.seg.content, DataSeg)
    ]


def of_type(sim: Sim, kind: SegType) -> list:
    return [t for t in sim.trace if t.seg.type is kind]


def test_a_block_crosses_a_clean_link_with_one_checkpoint_one_report_one_ack() -> None:
    sim = Sim()
    b = block(100_000)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    assert len(data_of(sim)) == -(-len(b) // SEG)
    assert [t.seg.type for t in sim.trace if t.frm == B] == [SegType.REPORT]
    assert len(of_type(sim, SegType.REPORT_ACK)) == 1
    assert not sim.a.exports and not sim.b.imports  # both sessions closed
    # out, back, ack: the receiver closes one light time after the sender
    assert sim.clock.now_ns() < (3 * sim.owlt_s + 0.2) * S


def test_exactly_the_missing_ranges_are_sent_again() -> None:
    lost_offsets = {3 * SEG, 7 * SEG, 8 * SEG, 50 * SEG}
    first = set()

    def drop(frm: int, dgram: bytes) -> bool:
        c = decode(dgram).content
        if frm == A and isinstance(c, DataSeg) and c.offset in lost_offsets and c.offset not in first:
            first.add(c.offset)
            return True
        return False

    sim = Sim(drop=drop)
    b = block(60 * SEG + 100)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    sent = data_of(sim)
    again = sent[len(b) // SEG + 1 :]
    assert [(o, ln) for o, ln, _ in again] == [(o, SEG) for o in sorted(lost_offsets)]
    report = of_type(sim, SegType.REPORT)[0].seg.content
    assert (report.lower, report.upper) == (0, len(b))
    assert len(report.claims) == 4  # the three holes split what arrived in four
    assert sim.a.exports == {} and sum(ln for _, ln, lost in sent if lost) == 4 * SEG


def test_timers_are_suspended_across_a_planned_gap() -> None:
    # Both directions open 0-10 s and 100-200 s with 1 s of light time, so usable to 9 s; a
    # checkpoint leaves at ~8.6 s and reaches the receiver at ~9.6 s, too late for its report to
    # arrive before the close: the report leaves at 100 s. The checkpoint's timer (2 s round trip
    # + 1 s margin) must not run out in the gap.
    sim = Sim(spans=[(0, 10), (100, 200)], rate=50_000)
    sim.clock.set(int(8.5 * S))
    b = block(5_000)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    checkpoints = [t for t in sim.trace if t.seg.type is SegType.RED_CP_EORP_EOB]
    assert len(checkpoints) == 1, "the checkpoint was sent again: its timer ran in the gap"
    assert checkpoints[0].t < 9 * S
    report = of_type(sim, SegType.REPORT)[0]
    assert report.t == 100 * S  # held while the plan said the way back was closed
    assert not of_type(sim, SegType.CANCEL_FROM_SENDER)


def test_a_timer_counts_only_open_time() -> None:
    sim = Sim(spans=[(0, 10), (100, 200)], rate=1_000_000)
    sim.clock.set(int(8.9 * S))
    n = sim.send(block(1000))
    sim.step()  # the checkpoint leaves at 8.9 s
    timer = next(iter(sim.a.exports[n]._checkpoints.values()))
    # the way back is usable to 9 s (10 s less its light time): 0.1 s counted before, 2.9 s after 100 s
    assert timer.deadline == 100 * S + int(2.9 * S)


def test_a_session_is_cancelled_after_its_retries_and_the_block_resent_in_the_next_window() -> None:
    # An unplanned outage (no reports get through from 2 s to 60 s) exhausts the checkpoint's
    # retransmissions: the session is cancelled (RLEXC), the sender keeps the block, and sends
    # it again in the next planned window, where it completes; the block is delivered once.
    settings = LtpSettings(A, max_retries=3)
    sim = Sim(spans=[(0, 60), (100, 200)], settings_a=settings)
    sim.drop = lambda frm, dgram: 2 * S <= sim.clock.now_ns() < 60 * S
    sim.clock.set(3 * S)
    b = block(20_000)
    n = sim.send(b)
    sim.run(until_s=60)
    failed = sim.outcome(n)
    assert isinstance(failed, ExportFailed) and "unanswered after 3 retransmissions" in failed.reason
    assert len([t for t in sim.trace if t.seg.type is SegType.RED_CP_EORP_EOB]) == 4
    cancels = of_type(sim, SegType.CANCEL_FROM_SENDER)
    assert cancels and cancels[0].seg.content == Cancel(CancelReason.RLEXC)
    assert sim.delivered == []
    sim.clock.set(100 * S)  # the stored bundle's next try, in the next window
    m = sim.send(b)
    sim.run()
    assert sim.outcome(m) == ExportDone(m)
    assert sim.delivered == [b]
    assert not sim.a.exports and not sim.b.imports


def test_the_completing_report_waits_for_the_agents_durable_store() -> None:
    sim = Sim()
    sim.hold = True
    b = block(30_000)
    n = sim.send(b)
    sim.run(until_s=30)
    assert len(sim.held) == 1 and sim.held[0].data == b
    assert sim.outcome(n) is None  # not acknowledged upward while the agent has not stored it
    assert not of_type(sim, SegType.REPORT), "a report went out before the agent stored the block"
    sim.b.accept(sim.held[0].engine, sim.held[0].session)
    sim.run(until_s=60)
    assert sim.outcome(n) == ExportDone(n)
    report = of_type(sim, SegType.REPORT)[0].seg.content
    assert isinstance(report, ReportSeg) and report.claims[0].length == len(b)


def test_a_refused_block_cancels_the_session_and_fails_the_send() -> None:
    sim = Sim()
    sim.refuse = True
    n = sim.send(block(10_000))
    sim.run()
    failed = sim.outcome(n)
    assert isinstance(failed, ExportFailed) and "SYS_CNCLD" in failed.reason
    assert len(of_type(sim, SegType.CANCEL_ACK_TO_RECEIVER)) == 1
    assert not sim.a.exports and not sim.b.imports


def test_a_lost_final_report_is_answered_again_and_the_block_delivered_once() -> None:
    reports = []

    def drop(frm: int, dgram: bytes) -> bool:
        seg = decode(dgram)
        if seg.type is SegType.REPORT:
            reports.append(seg)
            return len(reports) <= 2  # the first report and its first retransmission are lost
        return False

    sim = Sim(drop=drop)
    b = block(10_000)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    assert len(reports) >= 3


def test_a_session_the_plan_never_lets_finish_fails_its_send() -> None:
    # The way back never opens again after 10 s: no report can ever come, so the send fails
    # (the bundle stays stored) instead of holding an export session for ever.
    sim = Sim(spans=[(0, 10)], back_spans=[(0, 10)])
    sim.clock.set(int(8.9 * S))
    n = sim.send(block(2000))
    sim.run()
    failed = sim.outcome(n)
    assert isinstance(failed, ExportFailed) and "plan" in failed.reason
    assert not sim.a.exports


def test_many_blocks_over_a_lossy_link_all_arrive_once() -> None:
    sim = Sim(loss=0.05, seed=7)
    blocks = [block(20_000 + i, seed=i) for i in range(20)]
    numbers = [sim.send(b) for b in blocks]
    sim.run()
    assert all(sim.outcome(n) == ExportDone(n) for n in numbers)
    assert sorted(sim.delivered) == sorted(blocks)
    assert not sim.a.exports and not sim.b.imports


def test_a_block_with_more_holes_than_one_report_segment_holds_is_repaired_in_one_round() -> None:
    holes = {SEG * k for k in range(1, 400, 3)}  # 133 holes: three report segments
    first: set[int] = set()

    def drop(frm: int, dgram: bytes) -> bool:
        c = decode(dgram).content
        if frm == A and isinstance(c, DataSeg) and c.offset in holes and c.offset not in first:
            first.add(c.offset)
            return True
        return False

    sim = Sim(drop=drop)
    b = block(400 * SEG)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    reports = [t.seg.content for t in of_type(sim, SegType.REPORT)]
    first_cp = reports[0].checkpoint
    scopes = [(r.lower, r.upper) for r in reports if r.checkpoint == first_cp]
    assert len(scopes) == 3 and scopes[0][0] == 0 and scopes[-1][1] == len(b)
    assert all(a[1] == b_[0] for a, b_ in zip(scopes, scopes[1:], strict=False))  # they partition the block
    assert len(data_of(sim)) == 400 + len(holes)  # every hole sent again once, nothing else
    assert not [t for t in sim.trace if t.seg.type is SegType.RED_CP_EORP_EOB][1:], "a checkpoint timed out"


def test_a_session_whose_data_can_never_leave_fails_its_send() -> None:
    sim = Sim(spans=[(0, 10)], rate=1000)  # 1 kB/s: the block cannot leave before the last window closes
    n = sim.send(block(50_000))
    sim.run()
    failed = sim.outcome(n)
    assert isinstance(failed, ExportFailed) and "no contact to the peer" in failed.reason
    assert not sim.a.exports


def test_a_long_block_is_repaired_while_it_is_still_being_sent() -> None:
    # Discretionary checkpoints every MiB: repairs of early losses go out before the first pass ends.
    sim = Sim(loss=0.01, rate=1_000_000, seed=9)
    b = block(5 << 20)
    n = sim.send(b)
    sim.run()
    assert sim.outcome(n) == ExportDone(n) and sim.delivered == [b]
    data = [t for t in sim.trace if t.frm == A and isinstance(t.seg.content, DataSeg)]
    first_pass_end = next(t.t for t in data if t.seg.type is SegType.RED_CP_EORP_EOB)
    seen: set[int] = set()
    repairs = []
    for t in data:
        if t.seg.content.offset in seen:
            repairs.append(t)
        seen.add(t.seg.content.offset)
    assert len([t for t in sim.trace if t.seg.type is SegType.RED_CP]) >= 4  # discretionary checkpoints
    assert any(r.t < first_pass_end for r in repairs), "no repair went out before the first pass ended"
    assert sum(len(r.seg.content.data) for r in repairs) == sum(len(t.seg.content.data) for t in data if t.lost)


def test_a_receiver_that_restarts_mid_block_does_not_make_the_sender_count_it_done() -> None:
    # The receiver's engine is replaced (a crash and restart) after its first reports: what it
    # claimed then is gone. The sender must not add old claims to new ones and call the block done.
    sim = Sim(seed=2)
    b = block(3 << 20)
    n = sim.send(b)
    restarted = False

    def crash() -> bool:
        nonlocal restarted
        if not restarted and any(t.seg.type is SegType.REPORT and t.t > 0 for t in sim.trace):
            fresh = Sim(seed=2)
            sim.b = fresh.b  # same engine id, nothing of the session
            restarted = True
        return False

    sim.run(stop=crash)
    sim.run()
    assert restarted
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    assert sim.a.stats["receiver_forgot"] >= 1


def test_an_expedited_bundle_goes_ahead_of_a_bulk_block_half_sent() -> None:
    sim = Sim(rate=1_000_000)
    bulk = block(2 << 20, seed=1)
    small = block(3000, seed=2)
    nb = sim.a.send_block(B, bulk, rank=rank_of(Priority.BULK))
    sim.run(until_s=1.0)  # about half the bulk block is out
    ne = sim.a.send_block(B, small, rank=rank_of(Priority.EXPEDITED))
    sim.run()
    assert sim.outcome(nb) == ExportDone(nb) and sim.outcome(ne) == ExportDone(ne)
    assert sim.delivered == [small, bulk]
    done = {ev.session: i for i, ev in enumerate(sim.events) if isinstance(ev, ExportDone)}
    assert done[ne] < done[nb]
    assert len(data_of(sim)) == -(-len(bulk) // SEG) + -(-len(small) // SEG)  # nothing sent twice


def test_a_receiver_waits_out_a_mars_round_trip_for_its_repairs() -> None:
    # 12 minutes of light time each way: the receiver hears nothing for 24 minutes between its
    # report and the repairs, far past idle_ns (60 s); its session must not be reclaimed.
    lost: set[int] = set()

    def drop(frm: int, dgram: bytes) -> bool:
        c = decode(dgram).content
        if frm == A and isinstance(c, DataSeg) and c.offset == 5 * SEG and not lost:
            lost.add(c.offset)
            return True
        return False

    sim = Sim(owlt_s=720, drop=drop)
    b = block(20 * SEG)
    n = sim.send(b)
    sim.run(until_s=10_000)
    assert sim.outcome(n) == ExportDone(n)
    assert sim.delivered == [b]
    assert sim.b.stats["import_idle"] == 0


def test_a_new_session_reusing_a_remembered_number_is_never_told_it_arrived() -> None:
    # A sender that restarted may reuse a session number the receiver remembers as delivered:
    # the receiver must not answer the new block's checkpoint with "all of it arrived".
    sim = Sim(settings_a=LtpSettings(A, max_retries=2))
    first = block(5000, seed=1)
    n = sim.send(first)
    sim.run()
    assert sim.outcome(n) == ExportDone(n)
    sim.a._next_number = n  # the restarted sender's numbering happens to start there again
    second = block(5000, seed=2)  # the same size: only the checkpoint serials tell the sessions apart
    m = sim.send(second)
    assert m == n
    sim.run()
    assert isinstance(sim.events[-1], ExportFailed)  # not done: the bundle stays with the sender
    k = sim.send(second)  # its next try, in a new session
    sim.run()
    assert sim.outcome(k) == ExportDone(k) and sim.delivered == [first, second]
