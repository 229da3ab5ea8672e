"""Classes of service on the serial CLA: an expedited bundle overtakes a bulk transfer in flight.

Two real SerialSessions on a modelled 115200-baud UART (hilnet.agent.cla.serial_sim), in
virtual time: the expedited bundle's segments go right after the frame on the wire, and
the bulk transfer resumes where it was, every byte sent once.
"""

import random

from hilnet.agent.cla.serial_frame import Ack
from hilnet.agent.cla.serial_proto import BundleReceived, SerialConfig, slip_overhead_bound
from hilnet.agent.cla.serial_send import Sender
from hilnet.agent.cla.serial_sim import SimLink
from hilnet.agent.cla.serial_timing import RttEstimator
from hilnet.bundle.cos import Priority, rank_of

MS = 1_000_000
S = 1_000 * MS
BAUD = 115200
DELAY = 255 * MS  # the ISS scenario's relay crosslink
BULK = rank_of(Priority.BULK)
EXPEDITED = rank_of(Priority.EXPEDITED, 7)


def _link() -> SimLink:
    cfg = [SerialConfig(eid, BAUD, delay_ns=DELAY) for eid in ("ipn:2.0", "ipn:3.0")]
    link = SimLink(*cfg, delay_ns=DELAY, seed=3)
    link.run(10 * S, stop=lambda: link.a.session.up and link.b.session.up)
    assert link.a.session.up and link.b.session.up
    return link


def _arrival_ns(link: SimLink, data: bytes, limit_ns: int) -> int:
    """Run until ``data`` was received at b; returns that virtual time."""
    link.run(limit_ns, stop=lambda: data in link.b.received)
    assert data in link.b.received, "it never arrived"
    return link.now_ns


def test_expedited_bundle_overtakes_a_half_sent_bulk_transfer():
    link = _link()
    a = link.a.session
    bulk = random.Random(1).randbytes(1 << 20)
    tweet = random.Random(2).randbytes(400)
    a.send_bundle("photo", bulk, BULK)
    (t,) = a.sender.by_id.values()
    link.run(link.now_ns + 300 * S, stop=lambda: t.next_new >= t.count // 2)
    assert t.count // 2 <= t.next_new < t.count  # half sent, not finished
    submitted = link.now_ns
    a.send_bundle("tweet", tweet, EXPEDITED)
    arrived = _arrival_ns(link, tweet, submitted + 10 * S)

    segment_ns = a.timing.wire_ns(a.data_wire)  # one full DATA frame on the line
    own_ns = a.timing.wire_ns(slip_overhead_bound(len(tweet)))
    # The frame on the wire finishes first; the lead is how far ahead of the line the
    # session hands out bytes (it cannot take them back), a few ms past wake-up jitter.
    bound = segment_ns + a.lead_ns + own_ns + DELAY
    latency = arrived - submitted
    assert latency <= bound, f"tweet took {latency / MS:.1f} ms, bound {bound / MS:.1f} ms"
    assert bound < 500 * MS  # "a few hundred ms" at 115200 baud
    # The bulk transfer was still under way when the tweet arrived: it was overtaken, not waited for.
    assert bulk not in link.b.received

    link.run(link.now_ns + 300 * S, stop=lambda: "photo" in link.a.acked)
    assert link.b.received.count(bulk) == 1 and link.b.received.count(tweet) == 1
    assert link.b.received.index(tweet) < link.b.received.index(bulk)
    stats = a.stats
    assert stats["retransmissions"] == 0 and stats["idle_resends"] == 0  # no byte sent twice
    frames = 1 + (len(bulk) - 1) // a.config.segment_size + 1  # every bulk segment once, and the tweet
    assert stats["data_frames_sent"] == frames


def test_without_ranks_the_same_tweet_waits_for_the_bulk_transfer():
    """The comparison the test above rests on: at equal rank the tweet goes after the photo."""
    link = _link()
    a = link.a.session
    bulk = random.Random(1).randbytes(256 * 1024)
    tweet = random.Random(2).randbytes(400)
    a.send_bundle("photo", bulk, BULK)
    (t,) = a.sender.by_id.values()
    link.run(link.now_ns + 300 * S, stop=lambda: t.next_new >= t.count // 2)
    submitted = link.now_ns
    a.send_bundle("tweet", tweet, BULK)
    arrived = _arrival_ns(link, tweet, submitted + 100 * S)
    assert bulk in link.b.received  # it waited for the photo ...
    assert arrived - submitted > 5 * S  # ... about half of 23 s


def test_sender_orders_by_rank_then_queueing_and_preempts_past_max_active():
    snd = Sender(nonce=5, seg_size=100, max_active=1, rtt=RttEstimator(S, MS, MS))
    snd.window = 100
    bulk = snd.add("bulk", bytes(1000), BULK)
    assert snd.next_frame() == (bulk, 0)
    snd.mark_sent(bulk, 0, 0)
    normal = snd.add("normal", bytes(300), rank_of(Priority.STANDARD))
    low = snd.add("exp-1", bytes(200), rank_of(Priority.EXPEDITED, 1))
    high = snd.add("exp-9", bytes(200), rank_of(Priority.EXPEDITED, 9))
    order = []
    while (pick := snd.next_frame()) is not None:
        t, i = pick
        snd.mark_sent(t, i, 0)
        order.append((t.bundle_id, i))
    assert order[:4] == [("exp-9", 0), ("exp-9", 1), ("exp-1", 0), ("exp-1", 1)]
    assert order[4:7] == [("normal", 0), ("normal", 1), ("normal", 2)]
    assert order[7:] == [("bulk", i) for i in range(1, 10)]  # resumed at its next segment
    assert len(snd.active) == 4 and high.transfer in snd.active and low.transfer in snd.active
    assert normal.transfer in snd.active


def test_a_lost_bulk_segment_waits_while_expedited_segments_go():
    snd = Sender(nonce=5, seg_size=100, max_active=2, rtt=RttEstimator(S, MS, MS))
    snd.window = 100
    bulk = snd.add("bulk", bytes(1000), BULK)
    for i in range(4):
        assert snd.next_frame() == (bulk, i)
        snd.mark_sent(bulk, i, i * MS)
    snd.on_ack(Ack(5, bulk.transfer, False, 1, bytes([0x80])), 10 * MS)  # 1 missing, 2 arrived: 1 lost
    assert bulk.lost == {1}
    exp = snd.add("exp", bytes(150), EXPEDITED)
    assert snd.next_frame() == (exp, 0)
    snd.mark_sent(exp, 0, 11 * MS)
    assert snd.next_frame() == (exp, 1)
    snd.mark_sent(exp, 1, 12 * MS)
    assert snd.next_frame() == (bulk, 1)  # then the resend, before new bulk segments


def test_received_events_report_each_bundle_once():
    link = _link()
    bulk = random.Random(5).randbytes(40_000)
    tweets = [random.Random(10 + i).randbytes(400) for i in range(5)]
    link.a.session.send_bundle("bulk", bulk, BULK)
    for i, tw in enumerate(tweets):
        link.run(link.now_ns + 500 * MS)
        link.a.session.send_bundle(f"t{i}", tw, EXPEDITED)
    link.run(link.now_ns + 60 * S, stop=lambda: len(link.a.acked) == 6)
    got = [e.data for e in link.b.events if isinstance(e, BundleReceived)]
    assert sorted(got) == sorted([bulk, *tweets]) and got[-1] == bulk
