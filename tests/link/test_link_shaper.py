"""The link shaper, driven with plain ints for time (no clock, no sleeps)."""

from __future__ import annotations

import math

import pytest

from hilnet.errors import LinkError
from hilnet.link.shaper import Direction, DirectionConfig, Medium, ScheduleEvent, wire_bits

MS = 1_000_000
S = 1_000_000_000


def run(d: Direction, sends, until_ns: int, step_ns: int | None = None):
    """Feed ``sends`` [(t, data)] and collect [(t_delivered, unit)], waking exactly when asked."""
    sends = sorted(sends, key=lambda s: s[0])
    got = []
    i = 0
    now = 0
    while True:
        wake = d.next_wake_ns()
        nxt = sends[i][0] if i < len(sends) else None
        cands = [x for x in (wake, nxt) if x is not None]
        if not cands:
            break
        now = max(now, min(cands))
        if step_ns:  # a driver that only wakes on a grid (late)
            now = -(-now // step_ns) * step_ns
        if now > until_ns:
            break
        while i < len(sends) and sends[i][0] <= now:
            d.accept(sends[i][1], now if step_ns else sends[i][0])
            i += 1
        for u in d.pop_due(now):
            got.append((now, u))
    return got


def frame_ns(nbytes: int, rate: int) -> float:
    return wire_bits(Medium.ETHERNET, nbytes) * S / rate


# -- serialisation ---------------------------------------------------------------------


def test_ethernet_back_to_back_departures_are_exact():
    d = Direction(DirectionConfig(rate_bps=10_000_000, delay_ns=5 * MS), Medium.ETHERNET, seed=1)
    got = run(d, [(0, bytes([k]) * 1500) for k in range(5)], 10 * S)
    # 1500 B + 24 B overhead = 12192 bits = 1,219,200 ns at 10 Mbit/s
    assert [t for t, _ in got] == [5 * MS + (k + 1) * 1_219_200 for k in range(5)]
    assert [u.data[0] for _, u in got] == [0, 1, 2, 3, 4]


def test_short_ethernet_frames_are_padded_on_the_wire():
    assert wire_bits(Medium.ETHERNET, 20) == (60 + 24) * 8
    assert wire_bits(Medium.ETHERNET, 1500) == 1524 * 8
    assert wire_bits(Medium.DATAGRAM, 100) == 128 * 8
    assert wire_bits(Medium.SERIAL, 100, 11) == 1100


def test_serial_rate_does_not_drift_over_a_long_run():
    baud = 115_200  # 10 bits per byte: 86,805.55... ns a byte, never a whole number
    d = Direction(DirectionConfig(baud=baud, bits_per_byte=10), Medium.SERIAL, seed=1)
    total = 0
    for _ in range(2000):  # 2000 x 500 B, all offered at t=0
        d.accept(bytes(500), 0)
        total += 500
    last = None
    delivered = 0
    while (w := d.next_wake_ns()) is not None:
        for u in d.pop_due(w):
            delivered += len(u.data)
            last = w
    assert delivered == total
    assert last == math.ceil(total * 10 * S / baud)  # exact to the ns after ~87 s of line time


def test_serial_chunks_trickle_at_line_pace():
    d = Direction(DirectionConfig(baud=115_200), Medium.SERIAL, seed=1)
    d.accept(bytes(1000), 0)
    sizes, times = [], []
    while (w := d.next_wake_ns()) is not None:
        for u in d.pop_due(w):
            sizes.append(len(u.data))
            times.append(w)
    assert sizes == [64] * 15 + [40]  # 1 ms at 115200 baud is 11 B: 64 B wins
    assert times[0] == math.ceil(64 * 10 * S / 115_200)
    fast = Direction(DirectionConfig(baud=3_000_000), Medium.SERIAL, seed=1)
    fast.accept(bytes(1000), 0)
    assert len(fast.pop_due(10 * S)) == 4  # 1 ms at 3 Mbaud is 300 B


def test_no_burst_after_idle():
    rate = 1_000_000
    d = Direction(DirectionConfig(rate_bps=rate), Medium.ETHERNET, seed=1)
    t0 = 10 * S  # the line was idle for 10 s: that capacity is gone
    got = run(d, [(0, bytes(1000))] + [(t0, bytes(1000)) for _ in range(3)], 20 * S)
    per = 1024 * 8 * S // rate
    assert [t for t, _ in got] == [per, t0 + per, t0 + 2 * per, t0 + 3 * per]


def test_rate_change_mid_frame_sends_the_rest_at_the_new_rate():
    d = Direction(
        DirectionConfig(rate_bps=10_000_000),
        Medium.ETHERNET,
        seed=1,
        schedule=[ScheduleEvent(at_ns=609_600, changes={"rate_bps": 1_000_000})],
    )
    got = run(d, [(0, bytes(1500)), (0, bytes(1500))], 10 * S)
    # Half of 12192 bits went at 10 Mbit/s by 609.6 us; 6096 bits left at 1 Mbit/s.
    first = 609_600 + 6_096_000
    assert [t for t, _ in got] == [first, first + 12_192_000]


def test_rate_change_to_unlimited_releases_the_queue_at_that_instant():
    d = Direction(
        DirectionConfig(rate_bps=1_000_000),
        Medium.ETHERNET,
        seed=1,
        schedule=[ScheduleEvent(at_ns=1 * MS, changes={"rate_bps": None})],
    )
    got = run(d, [(0, bytes(1500)) for _ in range(4)], S)
    assert [t for t, _ in got] == [1 * MS] * 4


def test_late_driver_still_gets_exact_order_and_instants():
    cfg = DirectionConfig(rate_bps=10_000_000, delay_ns=MS)
    cut = ScheduleEvent(at_ns=3 * MS, up=False)
    exact = Direction(cfg, Medium.ETHERNET, seed=1, schedule=[cut])
    late = Direction(cfg, Medium.ETHERNET, seed=1, schedule=[cut])
    sends = [(0, bytes([k]) * 1500) for k in range(4)]
    a = run(exact, sends, S)
    b = run(late, sends, S, step_ns=7 * MS)  # wakes only every 7 ms
    assert [u.data for _, u in a] == [u.data for _, u in b]
    assert exact.stats.drops == late.stats.drops
    # at 3 ms: frame 0 arrived (2.22 ms), frame 1 propagating and frame 2 on the wire are
    # cut, frame 3 never left the queue
    assert late.stats.drops["cut-in-flight"] == 2
    assert late.stats.drops["down"] == 1
    assert [u.data[0] for _, u in b] == [0]


# -- gate ------------------------------------------------------------------------------


def test_units_in_flight_when_the_link_goes_down_are_lost():
    d = Direction(
        DirectionConfig(delay_ns=100 * MS, rate_bps=1_000_000),
        Medium.ETHERNET,
        seed=1,
        schedule=[ScheduleEvent(at_ns=150 * MS, up=False), ScheduleEvent(at_ns=400 * MS, up=True)],
    )
    events = []
    d.on_event(events.append)
    sends = [
        (0, b"a" * 1000),  # departs 8.192 ms, arrives 108.192 ms: delivered
        (100 * MS, b"b" * 1000),  # propagating at 150 ms: cut
        (149 * MS, b"c" * 1000),  # on the wire at 150 ms: cut
        (200 * MS, b"d" * 1000),  # arrives while down: dropped
        (400 * MS, b"e" * 1000),  # arrives at the instant it comes up: carried
    ]
    got = run(d, sends, 10 * S)
    assert [u.data[:1] for _, u in got] == [b"a", b"e"]
    assert got[1][0] == 400 * MS + 8_192_000 + 100 * MS
    assert d.stats.drops["cut-in-flight"] == 2
    assert d.stats.drops["down"] == 1
    assert d.stats.dropped == 3 and d.stats.drop_bytes["cut-in-flight"] == 2000
    assert [(t.up, t.intended_ns) for t in d.stats.transitions] == [(False, 150 * MS), (True, 400 * MS)]
    kinds = [e["event"] for e in events]
    assert kinds.count("drop") == 3 and "down" in kinds and "up" in kinds


def test_unit_arriving_at_the_instant_of_the_cut_is_delivered():
    d = Direction(
        DirectionConfig(delay_ns=10 * MS), Medium.ETHERNET, seed=1, schedule=[ScheduleEvent(at_ns=10 * MS, up=False)]
    )
    d.accept(b"x", 0)
    assert [u.data for u in d.pop_due(10 * MS)] == [b"x"]
    assert d.stats.dropped == 0


def test_gate_records_intended_and_applied_times():
    d = Direction(DirectionConfig(up=False), Medium.ETHERNET, seed=1, schedule=[ScheduleEvent(at_ns=5 * MS, up=True)])
    d.accept(b"early", 1 * MS)
    d.pop_due(5 * MS + 300)  # the driver woke 300 ns late
    tr = d.stats.transitions
    assert len(tr) == 1 and tr[0].up and tr[0].intended_ns == 5 * MS and tr[0].applied_ns == 5 * MS + 300
    assert d.stats.drops["down"] == 1
    d.accept(b"later", 6 * MS)
    assert [u.data for u in d.pop_due(6 * MS)] == [b"later"]


def test_event_scheduled_in_the_past_applies_now():
    d = Direction(DirectionConfig(delay_ns=10 * MS), Medium.ETHERNET, seed=1)
    d.accept(b"x", 0)
    d.pop_due(5 * MS)
    d.schedule(ScheduleEvent(at_ns=1 * MS, up=False))
    assert d.pop_due(20 * MS) == []
    assert d.stats.drops["cut-in-flight"] == 1
    assert d.stats.transitions[0].intended_ns == 1 * MS and d.stats.transitions[0].applied_ns == 20 * MS


def test_stream_stalls_while_down_and_never_drops():
    d = Direction(
        DirectionConfig(delay_ns=MS, loss=0.9, ber=0.1, rate_bps=8_000_000),
        Medium.STREAM,
        seed=1,
        schedule=[ScheduleEvent(at_ns=10 * MS, up=False), ScheduleEvent(at_ns=50 * MS, up=True)],
    )
    sends = [(k * MS, bytes([k]) * 100) for k in range(0, 40, 2)]
    got = run(d, sends, S)
    assert bytes(b for _, u in got for b in u.data) == b"".join(data for _, data in sends)
    assert d.stats.dropped == 0 and d.stats.bits_flipped == 0
    late = [t for t, u in got if u.data[0] >= 10]
    assert min(late) == 50 * MS + 100 * 8 * S // 8_000_000 + MS  # stalled to the up instant, then rate + delay
    d.schedule(ScheduleEvent(at_ns=2 * S, up=False))
    d.pop_due(2 * S)
    assert not d.accepting()


def test_stream_is_never_reordered_even_when_reorder_is_asked():
    """A byte stream reordered is a corrupted stream: jitter may only delay it."""
    cfg = DirectionConfig(delay_ns=10 * MS, jitter_ns=8 * MS, reorder=True)
    sends = [(k * 100_000, bytes([k % 256]) * 10) for k in range(500)]  # 0.1 ms apart, jitter 8 ms
    stream = run(Direction(cfg, Medium.STREAM, seed=3), sends, S)
    assert [u.data for _, u in stream] == [data for _, data in sends]
    frames = run(Direction(cfg, Medium.ETHERNET, seed=3), sends, S)
    assert [u.data for _, u in frames] != [data for _, data in sends]  # frames may overtake


def test_stream_queue_limit_is_backpressure_not_loss():
    d = Direction(DirectionConfig(rate_bps=8000, queue_units=2), Medium.STREAM, seed=1)
    for _ in range(5):
        d.accept(bytes(10), 0)
    assert not d.accepting() and d.stats.dropped == 0


# -- queue -----------------------------------------------------------------------------


def test_queue_tail_drop_by_units():
    d = Direction(DirectionConfig(rate_bps=1_000_000, queue_units=3), Medium.ETHERNET, seed=1)
    for k in range(10):
        d.accept(bytes([k]) * 500, 0)
    got = d.pop_due(10 * S)
    assert [u.data[0] for u in got] == [0, 1, 2, 3]  # one on the wire + three queued
    assert d.stats.drops["queue-full"] == 6


def test_queue_tail_drop_by_bytes_and_oversize():
    d = Direction(DirectionConfig(rate_bps=1_000_000, queue_bytes=1200), Medium.ETHERNET, seed=1)
    d.accept(bytes(1000), 0)  # on the wire: does not count
    d.accept(bytes(600), 0)
    d.accept(bytes(600), 0)  # 1200 queued
    d.accept(bytes(1), 0)  # full
    d.accept(bytes(1300), 0)  # bigger than the whole queue
    assert d.stats.drops["queue-full"] == 1 and d.stats.drops["oversize"] == 1
    # once the first has left, there is room again
    first = d.pop_due(1024 * 8 * 1000)
    d.accept(bytes(500), 1024 * 8 * 1000)
    assert d.stats.drops["queue-full"] == 1
    assert [len(u.data) for u in first + d.pop_due(10 * S)] == [1000, 600, 600, 500]


# -- loss and errors -------------------------------------------------------------------


def _drop_pattern(seed: int, config: DirectionConfig, n: int = 5000) -> list[int]:
    d = Direction(config, Medium.ETHERNET, seed=seed)
    lost = []
    for k in range(n):
        before = d.stats.dropped
        d.accept(k.to_bytes(4, "big"), k)
        if d.stats.dropped != before:
            lost.append(k)
    return lost


def test_same_seed_same_drops():
    cfg = DirectionConfig(loss=0.05, ber=1e-5)
    assert _drop_pattern(7, cfg) == _drop_pattern(7, cfg)
    assert _drop_pattern(7, cfg) != _drop_pattern(8, cfg)
    ge = DirectionConfig(gilbert=(0.02, 0.3, 0.0, 0.8))
    assert _drop_pattern(3, ge) == _drop_pattern(3, ge)


def test_bernoulli_loss_rate():
    n = 100_000
    lost = len(_drop_pattern(11, DirectionConfig(loss=0.1), n))
    assert abs(lost / n - 0.1) < 4 * math.sqrt(0.1 * 0.9 / n)


def test_gilbert_elliott_loss_rate_and_bursts():
    p, r = 0.01, 0.2  # good->bad, bad->good; all lost while bad, none while good
    n = 200_000
    lost = _drop_pattern(5, DirectionConfig(gilbert=(p, r, 0.0, 1.0)), n)
    rate = len(lost) / n
    assert abs(rate - p / (p + r)) < 0.006  # stationary loss 4.76 %
    bursts = 1
    for a, b in zip(lost, lost[1:]):
        if b != a + 1:
            bursts += 1
    mean_burst = len(lost) / bursts
    assert 4.3 < mean_burst < 5.7  # 1/r = 5 units
    bern = _drop_pattern(5, DirectionConfig(loss=rate), n)  # same rate, no bursts
    assert len(bern) / (1 + sum(b != a + 1 for a, b in zip(bern, bern[1:]))) < 1.2


def test_serial_bit_flips_match_ber_and_are_counted():
    ber = 1e-3
    d = Direction(DirectionConfig(ber=ber), Medium.SERIAL, seed=2)
    sent = bytes(range(256)) * 1000  # 2,048,000 bits
    for i in range(0, len(sent), 64):
        d.accept(sent[i : i + 64], i)
    received = b"".join(u.data for u in d.pop_due(10 * S))
    assert len(received) == len(sent)
    differing = sum(bin(a ^ b).count("1") for a, b in zip(sent, received))
    assert differing == d.stats.bits_flipped
    expected = ber * len(sent) * 8
    assert abs(differing - expected) < 4 * math.sqrt(expected)
    assert d.stats.dropped == 0


def test_ethernet_frame_with_a_bit_error_is_dropped():
    ber = 1e-5
    d = Direction(DirectionConfig(ber=ber), Medium.ETHERNET, seed=3)
    n = 20_000
    frame = bytes(range(250)) * 6
    for k in range(n):
        d.accept(frame, k)
    got = d.pop_due(S)
    assert all(u.data == frame for u in got)  # what arrives is intact
    p_frame = 1 - (1 - ber) ** ((1500 + 4) * 8)  # ~11.3 %
    dropped = d.stats.drops["corrupt"]
    assert dropped + len(got) == n
    assert abs(dropped / n - p_frame) < 4 * math.sqrt(p_frame * (1 - p_frame) / n)
    assert d.stats.bits_flipped >= dropped


def test_ber_change_takes_effect_at_its_instant():
    d = Direction(
        DirectionConfig(),
        Medium.SERIAL,
        seed=1,
        schedule=[ScheduleEvent(at_ns=100, changes={"ber": 1.0}), ScheduleEvent(at_ns=200, changes={"ber": 0.0})],
    )
    d.accept(b"\x00", 99)
    d.accept(b"\x00", 100)
    d.accept(b"\x00", 200)
    assert [u.data for u in d.pop_due(300)] == [b"\x00", b"\xff", b"\x00"]
    assert d.stats.bits_flipped == 8


# -- propagation -----------------------------------------------------------------------


def test_jitter_never_reorders_unless_asked():
    cfg = DirectionConfig(delay_ns=10 * MS, jitter_ns=5 * MS)
    d = Direction(cfg, Medium.ETHERNET, seed=4)
    got = run(d, [(k * 100_000, k.to_bytes(2, "big")) for k in range(1000)], 10 * S)
    seq = [int.from_bytes(u.data, "big") for _, u in got]
    assert seq == list(range(1000))
    delays = [t - u.arrive_ns for t, u in got]
    assert min(delays) >= 5 * MS and max(delays) <= 15 * MS + 100_000 * 1000
    assert len(set(delays)) > 100  # it does jitter
    r = Direction(DirectionConfig(delay_ns=10 * MS, jitter_ns=5 * MS, reorder=True), Medium.ETHERNET, seed=4)
    got = run(r, [(k * 100_000, k.to_bytes(2, "big")) for k in range(1000)], 10 * S)
    seq = [int.from_bytes(u.data, "big") for _, u in got]
    assert sorted(seq) == list(range(1000)) and seq != list(range(1000))
    assert all(5 * MS <= t - u.arrive_ns <= 15 * MS for t, u in got)


def test_delay_change_applies_to_units_leaving_after_it():
    d = Direction(
        DirectionConfig(delay_ns=100 * MS),
        Medium.ETHERNET,
        seed=1,
        schedule=[ScheduleEvent(at_ns=50 * MS, changes={"delay_ns": 10 * MS})],
    )
    got = run(d, [(0, b"a"), (60 * MS, b"b")], S)
    assert [(t, u.data) for t, u in got] == [(100 * MS, b"a"), (100 * MS, b"b")]  # b may not overtake a


def test_deep_space_delay_holds_only_what_is_in_flight():
    baud = 9600
    owlt = 22 * 60 * S  # Mars at its farthest
    d = Direction(DirectionConfig(baud=baud, delay_ns=owlt), Medium.SERIAL, seed=1)
    step = 100 * MS  # the sender offers 96 B every 100 ms: the line's full rate
    peak = 0
    first = None
    delivered = 0
    for k in range(int(30 * 60 * S // step)):  # 30 minutes
        now = k * step
        d.accept(bytes(96), now)
        for u in d.pop_due(now):
            delivered += len(u.data)
            first = first if first is not None else now
        peak = max(peak, d.in_flight)
    bytes_in_flight = baud // 10 * owlt // S  # rate x delay
    # 96 B offered = a 64 B and a 32 B serial unit: one entry each while in flight, nothing more
    assert peak <= 2 * (bytes_in_flight // 96) + 4
    assert peak >= 2 * (bytes_in_flight // 96) - 4  # and it really did hold 22 minutes of data
    assert first is not None and owlt < first <= owlt + step
    assert abs(delivered - (30 * 60 - 22 * 60) * baud // 10) <= 2 * 96


# -- the fast path and the interface ---------------------------------------------------


def test_unimpaired_direction_is_a_pass_through():
    d = Direction(DirectionConfig(), Medium.ETHERNET, seed=1)
    d.accept(b"x", 5, tag="flow-1")
    assert d.next_wake_ns() == 5
    [u] = d.pop_due(5)
    assert (u.data, u.arrive_ns, u.tag) == (b"x", 5, "flow-1")
    assert d.next_wake_ns() is None
    assert (d.stats.units_in, d.stats.units_out, d.stats.bytes_out) == (1, 1, 1)


def test_bad_configuration_is_refused():
    with pytest.raises(LinkError):
        DirectionConfig(delay_ns=-1)
    with pytest.raises(LinkError):
        DirectionConfig(loss=1.5)
    with pytest.raises(LinkError):
        DirectionConfig(rate_bps=0)
    with pytest.raises(LinkError):
        DirectionConfig(gilbert=(0.1, 0.2))  # type: ignore[arg-type]
    with pytest.raises(LinkError):
        ScheduleEvent(at_ns=0, changes={"speed": 1})


# -- conservation, whatever happens ----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 5 * MS), st.integers(0, 2000), st.sampled_from(["send", "down", "up", "rate"])),
        max_size=60,
    ),
    loss=st.sampled_from([0.0, 0.3]),
    ber=st.sampled_from([0.0, 1e-4]),
    queue=st.sampled_from([None, 2]),
    jitter=st.sampled_from([0, MS]),
)
def test_every_unit_is_delivered_dropped_or_still_inside(ops, loss, ber, queue, jitter):
    d = Direction(
        DirectionConfig(rate_bps=10_000_000, delay_ns=2 * MS, jitter_ns=jitter, loss=loss, ber=ber, queue_units=queue),
        Medium.ETHERNET,
        seed=9,
    )
    now = 0
    out = []
    for dt, size, op in ops:
        now += dt
        if op == "send":
            d.accept(bytes(size), now)
        elif op == "rate":
            d.schedule(ScheduleEvent(now, changes={"rate_bps": 1_000_000 + size * 1000}))
        else:
            d.schedule(ScheduleEvent(now, up=op == "up"))
        out += d.pop_due(now)
        s = d.stats
        assert s.units_in == s.units_out + s.dropped + d.in_flight
    out += d.pop_due(now + 10 * S)
    assert d.in_flight == 0 and d.next_wake_ns() is None
    assert d.stats.units_out == len(out) and d.stats.bytes_in == d.stats.bytes_out + sum(d.stats.drop_bytes.values())


def test_every_stage_has_the_same_three_methods():
    import random

    from hilnet.link.shaper.gate import Gate
    from hilnet.link.shaper.loss import Loss
    from hilnet.link.shaper.propagation import Propagation
    from hilnet.link.shaper.transmitter import Transmitter
    from hilnet.link.shaper.types import Unit

    dropped = []
    drop = lambda u, reason, t: dropped.append(reason)  # noqa: E731
    loss = Loss(random.Random(1), drop)
    loss.configure(DirectionConfig(loss=1.0))
    gate = Gate(up=True, stall=False, drop=drop)
    tx = Transmitter(Medium.SERIAL, drop)
    tx.configure(DirectionConfig(baud=1000), 0)
    prop = Propagation(random.Random(1), drop)
    prop.configure(DirectionConfig(delay_ns=5))
    for stage in (gate, loss, tx, prop):
        stage.accept(Unit(b"x", 0), 0)
    assert [u.data for u in gate.pop_due(0)] == [b"x"] and gate.next_wake_ns() is None
    assert loss.pop_due(0) == [] and dropped == ["loss"]
    assert tx.next_wake_ns() == 10 * MS and tx.pop_due(10 * MS - 1) == [] and len(tx.pop_due(10 * MS)) == 1
    assert prop.next_wake_ns() == 5 and len(prop.pop_due(5)) == 1


def test_initial_state_is_in_force_before_its_time_and_recorded_at_it():
    """A link's state at the run's start, set ahead of it: its record says the start, not earlier."""
    d = Direction(DirectionConfig(up=False, delay_ns=MS), Medium.ETHERNET, seed=1)
    events: list[dict] = []
    d.on_event(events.append)
    d.set_initial(ScheduleEvent(at_ns=100 * MS, up=True), now_ns=40 * MS)
    assert d.is_up()
    d.accept(b"x" * 60, 50 * MS)  # before the start: the link is already as it starts
    assert [u.data for u in d.pop_due(51 * MS)] == [b"x" * 60]
    assert events == [{"event": "up", "at_ns": 100 * MS, "applied_ns": 100 * MS}]


def test_initial_state_set_after_its_time_is_recorded_late():
    d = Direction(DirectionConfig(up=False), Medium.ETHERNET, seed=1, name="a->b")
    events: list[dict] = []
    d.on_event(events.append)
    d.set_initial(ScheduleEvent(at_ns=100 * MS, up=True, changes={"delay_ns": 2 * MS}), now_ns=103 * MS)
    assert d.is_up() and d.config.delay_ns == 2 * MS
    assert [(e["event"], e["at_ns"], e["applied_ns"]) for e in events] == [
        ("up", 100 * MS, 103 * MS),
        ("change", 100 * MS, 103 * MS),
    ]
