"""The serial CLA session on a modelled UART link, in virtual time.

Every test drives two real SerialSessions through hilnet.agent.cla.serial_sim:
byte pacing at the baud, propagation delay, seeded bit errors and outages.
"""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hilnet.agent.cla.serial_frame import Hello, encode
from hilnet.agent.cla.serial_proto import (
    BundleRefused,
    FrameRejected,
    PeerDown,
    PeerUp,
    SerialConfig,
    SerialSession,
)
from hilnet.agent.cla.serial_sim import SimLink
from hilnet.agent.cla.slip import slip_encode

MS = 1_000_000
S = 1_000 * MS
BAUD = 115200
DELAY = 120 * MS


def cfg(eid, **kw):
    return SerialConfig(eid, kw.pop("baud", BAUD), delay_ns=kw.pop("delay_ns", DELAY), **kw)


def make_link(ber=0.0, seed=1, outages=(), **kw):
    link = SimLink(cfg("ipn:1.0", **kw), cfg("ipn:2.0", **kw), delay_ns=DELAY, ber=ber, seed=seed, outages=outages)
    link.run(10 * S, stop=lambda: link.a.session.up and link.b.session.up)
    assert link.a.session.up and link.b.session.up
    return link


def payload(n, seed):
    return random.Random(seed).randbytes(n)


def test_peers_learn_each_other_from_hello():
    link = make_link()
    assert link.a.session.peer_eid == "ipn:2.0" and link.b.session.peer_eid == "ipn:1.0"
    assert link.now_ns < 2 * S  # a round trip and a half
    assert [e for e in link.a.events if isinstance(e, PeerUp)] == [PeerUp("ipn:2.0", False)]


def test_goodput_at_115200_baud_reaches_90_percent_of_the_line():
    link = make_link()
    data = payload(300 * 1024, 1)
    t0 = link.now_ns
    link.a.session.send_bundle("photo", data)
    link.run(t0 + 120 * S, stop=lambda: "photo" in link.a.acked)
    seconds = (link.a.acked["photo"] - t0) / S
    goodput = len(data) / seconds
    assert link.b.received == [data]
    assert goodput >= 0.90 * BAUD / 10, f"{goodput:.0f} B/s"


@pytest.mark.parametrize("ber, seed", [(1e-5, 1), (1e-5, 2), (1e-4, 3), (1e-4, 4)])
def test_every_bundle_arrives_intact_and_once_through_bit_errors(ber, seed):
    link = make_link(ber=ber, seed=seed)
    sizes = [60_000, 1, 5000, 1024, 2048, 30_000]
    ab = {f"a{i}": payload(n, seed * 100 + i) for i, n in enumerate(sizes)}
    ba = {f"b{i}": payload(n, seed * 200 + i) for i, n in enumerate(sizes[:3])}
    for k, v in ab.items():
        link.a.session.send_bundle(k, v)
    for k, v in ba.items():
        link.b.session.send_bundle(k, v)
    link.run(link.now_ns + 1200 * S, stop=lambda: len(link.a.acked) == len(ab) and len(link.b.acked) == len(ba))
    assert set(link.a.acked) == set(ab) and set(link.b.acked) == set(ba)
    assert sorted(link.b.received) == sorted(ab.values())  # intact, and each once
    assert sorted(link.a.received) == sorted(ba.values())
    assert link.ab.flipped > 0  # errors really happened...
    assert link.b.session.stats["rejected:crc"] > 0  # ...and were caught by the CRC


def test_outage_mid_bundle_resumes_from_the_last_acked_segment():
    cut, back = 10 * S, 20 * S
    link = make_link(outages=[(cut, back)])
    data = payload(300 * 1024, 7)
    link.a.session.send_bundle("big", data)
    link.run(200 * S, stop=lambda: "big" in link.a.acked)
    a, b = link.a, link.b
    downs = [e for e in a.events if isinstance(e, PeerDown)]
    assert downs == [PeerDown("ipn:2.0", "timeout")]
    assert b.received == [data]
    # Both ends noticed the dead link within a few round trips (RTT ~0.35 s here).
    rtt = a.session.rtt.srtt_ns
    assert a.session.stats["peer_up"] == 2 and b.session.stats["peer_up"] == 2
    resent = a.session.stats["bytes_resent"]
    assert resent < len(data) // 10, resent  # what was in flight at the cut, not the bundle
    assert a.session.stats["peer_restarts"] == 0
    assert 0 < rtt < 1 * S


def test_dead_link_is_noticed_within_a_few_round_trips():
    cut = 5 * S
    link = make_link(outages=[(cut, None)])
    link.a.session.send_bundle("x", payload(100_000, 1))
    link.run(30 * S, stop=lambda: not link.a.session.up and not link.b.session.up)
    rtt = 2 * DELAY + 91 * MS + 182 * MS  # propagation + a frame + an ack wait
    assert link.now_ns - cut < 6 * rtt, (link.now_ns - cut) / MS


def test_receiver_restart_makes_the_sender_start_the_bundle_again():
    link = make_link()
    data = payload(100 * 1024, 3)
    link.a.session.send_bundle("x", data)
    link.run(link.now_ns + 4 * S)
    assert link.b.received == [] and link.b.session.receiver.partials
    b = link.restart("b", cfg("ipn:2.0"), nonce=0xABCDEF)
    link.run(link.now_ns + 60 * S, stop=lambda: "x" in link.a.acked)
    assert b.received == [data]
    assert link.a.session.stats["peer_restarts"] == 1
    assert [e for e in link.a.events if isinstance(e, PeerDown)] == [PeerDown("ipn:2.0", "restarted")]
    assert PeerUp("ipn:2.0", True) in link.a.events


def test_sender_restart_drops_the_receivers_partial_state():
    link = make_link()
    link.a.session.send_bundle("x", payload(100 * 1024, 3))
    link.run(link.now_ns + 4 * S)
    assert len(link.b.session.receiver.partials) == 1
    a = link.restart("a", cfg("ipn:1.0"), nonce=0x12345)
    data = payload(3000, 4)
    a.session.send_bundle("y", data)
    link.run(link.now_ns + 30 * S, stop=lambda: "y" in a.acked)
    assert link.b.received == [data]
    assert link.b.session.stats["partials_dropped_restart"] == 1
    assert not link.b.session.receiver.partials


def test_lost_final_ack_is_repeated_and_the_bundle_not_delivered_twice():
    link = make_link()
    data = payload(20 * 1024, 5)
    link.a.session.send_bundle("x", data)
    r = link.b.session.receiver
    link.run(link.now_ns + 30 * S, stop=lambda: any(p.n_have == p.count - 1 for p in r.partials.values()))
    t = link.now_ns
    link.ba.outage(t, t + 1 * S)  # swallows the FINAL ack
    link.run(link.now_ns + 30 * S, stop=lambda: "x" in link.a.acked)
    assert link.b.received == [data]
    assert link.b.session.stats["duplicate_segments"] >= 1
    assert link.a.session.stats["peer_up"] == 1  # the gap was shorter than the dead timer


def test_refused_bundle_stays_with_the_sender_and_can_be_sent_again():
    link = make_link()
    full = [True]
    link.b.accept = lambda data: not full[0]
    data = payload(5000, 6)
    link.a.session.send_bundle(1, data)
    link.run(link.now_ns + 10 * S, stop=lambda: link.a.refused)
    assert link.a.refused == [(1, "store-full")] and 1 not in link.a.acked
    assert link.a.session.pending() == 0
    full[0] = False
    link.a.session.send_bundle(2, data)  # the agent retries later
    link.run(link.now_ns + 10 * S, stop=lambda: 2 in link.a.acked)
    assert link.b.received == [data]


def test_bundle_over_the_receivers_limit_is_refused_as_too_large():
    link = SimLink(cfg("ipn:1.0"), cfg("ipn:2.0", max_bundle=10_000), delay_ns=DELAY)
    link.run(10 * S, stop=lambda: link.a.session.up and link.b.session.up)
    link.a.session.send_bundle("big", payload(20_000, 1))
    link.run(link.now_ns + 10 * S, stop=lambda: link.a.refused)
    assert link.a.refused == [("big", "too-large")]
    assert [e for e in link.a.events if isinstance(e, BundleRefused)]


def test_hello_from_another_node_is_rejected():
    link = SimLink(cfg("ipn:1.0", peer="ipn:9.0"), cfg("ipn:2.0"), delay_ns=DELAY)
    link.run(5 * S)
    assert not link.a.session.up
    assert link.a.session.stats["rejected:wrong-peer"] >= 2
    assert FrameRejected("wrong-peer") in link.a.events


def test_malformed_input_is_counted_and_the_session_keeps_working():
    link = make_link()
    b = link.b.session
    rng = random.Random(9)
    for _ in range(300):
        b.feed(rng.randbytes(rng.randrange(1, 400)), link.now_ns)
    # CRC-valid frames with nonsense inside.
    b.feed(slip_encode(b"\x11" + bytes(30)), link.now_ns)
    b.feed(slip_encode(encode(Hello(5, 0, 100, "ipn:1.0"))[:-4] + b"\0\0\0\0"), link.now_ns)
    rejected = sum(v for k, v in b.stats.items() if k.startswith("rejected:"))
    assert rejected > 50 and b.stats["rejected:crc"] > 0
    data = payload(10_000, 2)
    link.a.session.send_bundle("after", data)
    link.run(link.now_ns + 30 * S, stop=lambda: "after" in link.a.acked)
    assert link.b.received == [data]


def test_random_bytes_into_a_fresh_session_never_raise():
    s = SerialSession(cfg("ipn:1.0"), 0)
    rng = random.Random(1)
    t = 0
    for _ in range(2000):
        t += rng.randrange(0, 50 * MS)
        s.feed(rng.randbytes(rng.randrange(0, 200)), t)
        s.data_to_send(t)
        assert s.next_deadline_ns() is not None


def test_cancel_stops_a_transfer():
    link = make_link()
    link.a.session.send_bundle("x", payload(100_000, 1))
    link.run(link.now_ns + 2 * S)
    assert link.a.session.cancel("x") and not link.a.session.cancel("x")
    sent = link.a.session.stats["data_frames_sent"]
    link.run(link.now_ns + 5 * S)
    assert link.a.session.stats["data_frames_sent"] == sent
    assert link.b.received == []


def test_duplicate_bundle_id_is_a_programming_error():
    s = SerialSession(cfg("ipn:1.0"), 0)
    s.send_bundle("x", b"1")
    with pytest.raises(ValueError):
        s.send_bundle("x", b"2")


def test_receiver_memory_is_bounded_and_an_evicted_transfer_starts_again():
    # One partial transfer at a time on B; A interleaves two bundles, so B keeps
    # evicting one while the other streams. Both still arrive, each once.
    link = SimLink(cfg("ipn:1.0", max_active=2), cfg("ipn:2.0", max_partial=1), delay_ns=DELAY, ber=1e-4, seed=5)
    link.run(10 * S, stop=lambda: link.a.session.up and link.b.session.up)
    d1, d2 = payload(20_000, 1), payload(20_000, 2)
    link.a.session.send_bundle(1, d1)
    link.a.session.send_bundle(2, d2)
    link.run(link.now_ns + 600 * S, stop=lambda: len(link.a.acked) == 2)
    assert sorted(link.b.received) == sorted([d1, d2])
    assert len(link.b.session.receiver.partials) <= 1
    assert link.b.session.stats["partials_evicted"] >= 1


def test_sender_restarts_a_transfer_the_receiver_forgot():
    from hilnet.agent.cla.serial_frame import Ack
    from hilnet.agent.cla.serial_send import Sender
    from hilnet.agent.cla.serial_timing import RttEstimator

    snd = Sender(nonce=5, seg_size=100, max_active=1, rtt=RttEstimator(S, MS, MS))
    snd.window = 50
    t = snd.add("x", bytes(1000))
    for i in range(10):
        pick = snd.next_frame()
        assert pick == (t, i)
        snd.mark_sent(t, i, depart_ns=i * MS)
    assert snd.on_ack(Ack(5, t.transfer, False, 4, b""), 20 * MS) is None
    assert t.cum == 4 and snd.n_inflight == 6
    snd.on_ack(Ack(5, t.transfer, False, 0, b""), 30 * MS)  # it forgot them
    assert snd.regressions == 1 and t.cum == 0 and t.next_new == 0 and snd.n_inflight == 0
    # FIFO-line loss detection: 2 missing while 3 (sent later) arrived means 2 was lost.
    for i in range(4):
        snd.mark_sent(t, i, depart_ns=40 * MS + i)
    snd.on_ack(Ack(5, t.transfer, False, 2, bytes([0x80])), 50 * MS)
    assert t.lost == {2} and snd.next_frame() == (t, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=120), st.integers(0, 10 * S)), max_size=20))
def test_any_byte_stream_at_any_time_is_survived(chunks):
    s = SerialSession(cfg("ipn:1.0"), 0, nonce=7)
    s.feed(slip_encode(encode(Hello(9, 7, 500, "ipn:2.0"))), 0)  # a peer, so frames reach the core
    t = 0
    for data, dt in chunks:
        t += dt
        for ev in s.feed(b"\xc0" + data + b"\xc0", t):
            assert isinstance(ev, (FrameRejected, PeerUp, PeerDown))
        s.data_to_send(t)
