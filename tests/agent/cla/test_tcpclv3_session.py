"""The sans-I/O TCPCLv3 session (RFC 7242), driven with plain bytes and a VirtualClock."""

from __future__ import annotations

import pytest

from hilnet.agent.cla import tcpclv3_wire as w
from hilnet.agent.cla.budget import MemoryBudget
from hilnet.agent.cla.sdnv import encode_sdnv, parse_sdnv
from hilnet.agent.cla.tcpclv3_events import (
    NS_PER_S,
    LimitReached,
    PeerShutdown,
    SessionConfig,
    SessionEnded,
    SessionUp,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)
from hilnet.agent.cla.tcpclv3_messages import ContactFlag, RefuseReason, SegmentFlag, ShutdownReason
from hilnet.agent.cla.tcpclv3_session import TcpclV3Session
from hilnet.bundle.cos import Priority, rank_of
from hilnet.clock import VirtualClock
from hilnet.errors import ClaError, TooBigForPeerError


def drain(s: TcpclV3Session, now: int = 0) -> bytes:
    out = bytearray()
    while chunks := s.data_to_send(now):
        out += b"".join(bytes(c) for c in chunks)
    return bytes(out)


def pump(a: TcpclV3Session, b: TcpclV3Session, now: int = 0, split: int | None = None):
    """Carry bytes both ways until quiet; returns (events of a, events of b)."""
    ev_a: list = []
    ev_b: list = []
    for _ in range(1000):
        ab, ba = drain(a, now), drain(b, now)
        if not ab and not ba:
            return ev_a, ev_b
        for src, dst, evs in ((ab, b, ev_b), (ba, a, ev_a)):
            step = split or max(1, len(src))
            for i in range(0, len(src), step):
                evs += dst.receive_data(src[i : i + step], now)
    raise AssertionError("sessions never went quiet")


def pair(ka: int = 10, kb: int = 30, **kw):
    a = TcpclV3Session(SessionConfig("ipn:1.0", keepalive_s=ka, **kw), active=True, now_ns=0)
    b = TcpclV3Session(SessionConfig("ipn:2.0", keepalive_s=kb, **kw), active=False, now_ns=0)
    ea, eb = pump(a, b)
    return a, b, ea, eb


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def ion_header(flags: int = ContactFlag.SEGMENT_ACKS, keepalive_s: int = 15, eid: str = "ipn:7.0") -> bytes:
    """The contact header ION 4.1.3's tcpcli sends: acks only, keepalive 15 s, its ipn node EID."""
    return w.encode_contact_header(flags, keepalive_s, eid)


def with_ion(**kw) -> tuple[TcpclV3Session, list]:
    """Our passive session after ION's contact header; its own header already drained."""
    s = TcpclV3Session(SessionConfig("ipn:2.0", **kw), active=False, now_ns=0)
    drain(s)
    return s, s.receive_data(ion_header(), 0)


def test_contact_header_octets_say_version_3_acks_refusal_length_keepalive_and_eid():
    s = TcpclV3Session(SessionConfig("ipn:1.0", keepalive_s=15), active=True, now_ns=0)
    assert drain(s) == b"dtn!\x03\x0d\x00\x0f\x07ipn:1.0"


def test_handshake_negotiates_the_smaller_keepalive_and_both_sides_features():
    a, b, ea, eb = pair(ka=7, kb=30)
    (up_a,) = of(ea, SessionUp)
    (up_b,) = of(eb, SessionUp)
    assert up_a.peer_eid == "ipn:2.0" and up_b.peer_eid == "ipn:1.0"
    assert up_a.params.keepalive_s == 7 == up_b.params.keepalive_s
    assert up_a.params.refusals and up_a.params.lengths


def test_ion_offers_no_refusal_or_length_so_the_session_uses_neither():
    s, events = with_ion(keepalive_s=30)
    (up,) = of(events, SessionUp)
    assert up.peer_eid == "ipn:7.0" and up.params.keepalive_s == 15
    assert not up.params.refusals and not up.params.lengths


def test_handshake_survives_one_octet_at_a_time():
    a, b = (TcpclV3Session(SessionConfig(f"ipn:{i}.0"), active=i == 1, now_ns=0) for i in (1, 2))
    ea, eb = pump(a, b, split=1)
    assert a.established and b.established and of(ea, SessionUp) and of(eb, SessionUp)


def test_a_bundle_in_segments_is_acked_per_segment_and_finally_only_after_the_commit():
    a, b, _, _ = pair(max_segment=4)
    ticket = a.start_transfer(b"0123456789", 0)
    ea, eb = pump(a, b)
    assert [(e.acked_len, e.final) for e in of(ea, TransferAcked)] == [(4, False), (8, False)]
    (rx,) = of(eb, TransferReceived)
    assert rx.data == b"0123456789"
    assert b.accept_transfer(rx.transfer_id, 0) == []
    ea, _ = pump(a, b)
    assert of(ea, TransferAcked) == [TransferAcked(ticket, 10, True)]


def test_data_segment_and_ack_octets_follow_rfc_7242():
    s, _ = with_ion()
    events = s.receive_data(bytes((0x12, 3)) + b"abc" + bytes((0x11, 2)) + b"de", 0)
    assert drain(s) == bytes((0x20, 3))  # the first segment's ack; the last waits for the commit
    (rx,) = of(events, TransferReceived)
    s.accept_transfer(rx.transfer_id, 0)
    assert drain(s) == bytes((0x20, 5))


def test_sdnv_lengths_above_127_octets():
    assert encode_sdnv(0) == b"\x00" and encode_sdnv(127) == b"\x7f"
    assert encode_sdnv(128) == b"\x81\x00" and encode_sdnv(65536) == b"\x84\x80\x00"
    for v in (0, 1, 127, 128, 300, 65535, 1 << 32, (1 << 64) - 1):
        assert parse_sdnv(encode_sdnv(v)) == (v, len(encode_sdnv(v)))
    s, _ = with_ion()
    big = bytes(range(256)) * 5
    (rx,) = of(
        s.receive_data(w.encode_segment_header(SegmentFlag.START | SegmentFlag.END, len(big)) + big, 0),
        TransferReceived,
    )
    assert rx.data == big


def test_acks_of_a_later_bundle_wait_behind_an_uncommitted_one():
    s, _ = with_ion()
    first = bytes((0x13, 2)) + b"ab"
    second = bytes((0x12, 2)) + b"cd"
    (rx,) = of(s.receive_data(first + second, 0), TransferReceived)
    assert drain(s) == b""  # the second bundle's ack would be taken for the first's
    s.accept_transfer(rx.transfer_id, 0)
    assert drain(s) == bytes((0x20, 2, 0x20, 2))


def test_refusal_without_refuse_bundle_ends_the_session_busy_with_a_reconnection_delay():
    s, _ = with_ion(busy_delay_s=3)
    (rx,) = of(s.receive_data(bytes((0x13, 2)) + b"ab", 0), TransferReceived)
    events = s.refuse_transfer(rx.transfer_id, RefuseReason.NO_RESOURCES, 0)
    assert drain(s) == w.encode_shutdown(ShutdownReason.BUSY, 3) == bytes((0x53, 0x02, 0x03))
    (end,) = of(events, SessionEnded)
    assert "busy" in end.reason and s.closed


def test_refusal_where_negotiated_is_refuse_bundle_and_the_sender_keeps_its_bundle():
    a, b, _, _ = pair()
    t1 = a.start_transfer(b"first", 0)
    t2 = a.start_transfer(b"second", 0)
    ea, eb = pump(a, b)
    r1, r2 = of(eb, TransferReceived)
    b.refuse_transfer(r1.transfer_id, RefuseReason.NO_RESOURCES, 0)
    b.accept_transfer(r2.transfer_id, 0)
    ea, _ = pump(a, b)
    assert of(ea, TransferRefused) == [TransferRefused(t1, RefuseReason.NO_RESOURCES)]
    assert of(ea, TransferAcked) == [TransferAcked(t2, 6, True)]
    assert a.established and b.established


def test_a_bundle_above_our_limit_is_refused_before_it_is_buffered():
    a, b, _, _ = pair(transfer_mru=100)
    b_events = b.receive_data(w.encode_length(1000) + w.encode_segment_header(SegmentFlag.START, 10) + bytes(10), 0)
    assert [v.reason for v in of(b_events, Violation)] == ["bundle_too_big"]
    assert drain(b) == w.encode_refuse(RefuseReason.NO_RESOURCES)
    with pytest.raises(TooBigForPeerError):
        a.start_transfer(bytes(101), 0)


def test_the_memory_budget_refuses_what_does_not_fit():
    a, b, _, _ = pair(budget=MemoryBudget(64))
    a.start_transfer(bytes(500), 0)
    _, eb = pump(a, b)
    assert of(eb, LimitReached) and not of(eb, TransferReceived)


def test_expedited_overtakes_bulk_not_yet_begun():
    a, b, _, _ = pair(max_segment=4)
    a.start_transfer(b"bulk-one", 0, rank_of(Priority.BULK))
    a.start_transfer(b"bulk-two", 0, rank_of(Priority.BULK))
    head = a.data_to_send(0)  # bulk-one's first segment: it has begun, nothing may cut into it
    a.start_transfer(b"expedite", 0, rank_of(Priority.EXPEDITED))
    eb = b.receive_data(b"".join(bytes(c) for c in head), 0)
    eb += pump(a, b)[1]
    assert [e.data for e in of(eb, TransferReceived)] == [b"bulk-one", b"expedite", b"bulk-two"]


def test_keepalive_after_the_interval_and_idle_shutdown_after_twice_it():
    clock = VirtualClock()
    s, _ = with_ion(keepalive_s=5)
    clock.advance(5 * NS_PER_S)
    assert s.next_deadline_ns() == 5 * NS_PER_S
    s.handle_timer(clock.now_ns())
    assert drain(s, clock.now_ns()) == bytes((0x40,))
    clock.advance(5 * NS_PER_S)
    events = s.handle_timer(clock.now_ns())  # nothing heard for 10 s: twice the interval
    assert drain(s, clock.now_ns()) == bytes((0x52, 0x00))  # SHUTDOWN "idle timeout"
    assert of(events, SessionEnded) and s.closed


def test_traffic_keeps_the_session_alive():
    clock = VirtualClock()
    s, _ = with_ion(keepalive_s=5)
    for _ in range(10):
        clock.advance(4 * NS_PER_S)
        s.receive_data(bytes((0x40,)), clock.now_ns())
        s.handle_timer(clock.now_ns())
        drain(s, clock.now_ns())
    assert s.established


def test_no_contact_header_in_time_ends_the_session():
    clock = VirtualClock()
    s = TcpclV3Session(SessionConfig("ipn:1.0", handshake_timeout_ns=2 * NS_PER_S), active=True, now_ns=0)
    clock.advance(2 * NS_PER_S)
    (end,) = of(s.handle_timer(clock.now_ns()), SessionEnded)
    assert "contact header" in end.reason


def test_partial_transfer_timeout_ends_a_stalled_bundle():
    clock = VirtualClock()
    s, _ = with_ion(keepalive_s=0, partial_timeout_ns=3 * NS_PER_S)
    s.receive_data(bytes((0x12, 100)) + b"x" * 10, clock.now_ns())
    clock.advance(3 * NS_PER_S)
    events = s.handle_timer(clock.now_ns())
    assert [e.limit for e in of(events, LimitReached)] == ["partial"] and s.closed


def test_peer_shutdown_with_reason_and_delay_ends_the_session_and_fails_what_was_in_flight():
    s, _ = with_ion()
    ticket = s.start_transfer(b"payload", 0)
    drain(s)
    events = s.receive_data(w.encode_shutdown(ShutdownReason.BUSY, 30), 0)
    assert of(events, PeerShutdown) == [PeerShutdown(ShutdownReason.BUSY, 30)]
    assert of(events, TransferFailed)[0].transfer_id == ticket
    (end,) = of(events, SessionEnded)
    assert end.reason == "peer: shutdown (busy)" and not end.clean


def test_terminate_sends_a_bare_shutdown():
    a, b, _, _ = pair()
    (end,) = of(a.terminate(0), SessionEnded)
    assert end.clean and drain(a) == bytes((0x50,))
    (theirs,) = of(b.receive_data(bytes((0x50,)), 0), SessionEnded)
    assert theirs.clean


def test_a_version_4_peer_gets_shutdown_version_mismatch():
    s = TcpclV3Session(SessionConfig("ipn:1.0"), active=False, now_ns=0)
    drain(s)
    events = s.receive_data(b"dtn!\x04\x00", 0)
    assert [v.reason for v in of(events, Violation)] == ["version_mismatch"]
    assert drain(s) == bytes((0x52, 0x01)) and s.closed


def test_a_peer_that_will_not_ack_is_refused():
    s = TcpclV3Session(SessionConfig("ipn:1.0"), active=False, now_ns=0)
    drain(s)
    events = s.receive_data(ion_header(flags=0), 0)
    assert [v.reason for v in of(events, Violation)] == ["peer_without_acks"] and s.closed


@pytest.mark.parametrize(
    ("octets", "reason"),
    [
        (bytes((0x11, 2)) + b"ab", "segment_without_start"),
        (bytes((0x12, 2)) + b"ab" + bytes((0x12, 1)) + b"c", "bundle_not_ended"),
        (bytes((0x70,)), "unknown_message_type"),
        (bytes((0x12,)) + b"\xff" * 11, "sdnv_too_long"),
    ],
)
def test_broken_streams_are_counted_and_end_with_shutdown(octets, reason):
    s, _ = with_ion()
    events = s.receive_data(octets, 0)
    assert [v.reason for v in of(events, Violation)] == [reason]
    assert drain(s).endswith(bytes((0x50,))) and s.closed


def test_acks_out_of_range_are_violations_and_change_nothing():
    a, b, _, _ = pair()
    a.start_transfer(b"abc", 0)
    drain(a)
    events = a.receive_data(w.encode_ack(9), 0)
    assert [v.reason for v in of(events, Violation)] == ["ack_bad_length"]
    assert of(a.receive_data(w.encode_ack(3), 0), TransferAcked)[0].final


def test_start_transfer_before_the_session_is_up_raises():
    s = TcpclV3Session(SessionConfig("ipn:1.0"), active=True, now_ns=0)
    with pytest.raises(ClaError):
        s.start_transfer(b"x", 0)


def test_transfer_timeout_ends_a_session_whose_peer_never_acks():
    clock = VirtualClock()
    s, _ = with_ion(keepalive_s=0, transfer_timeout_ns=4 * NS_PER_S)
    ticket = s.start_transfer(b"never acked", clock.now_ns())
    drain(s, clock.now_ns())
    clock.advance(4 * NS_PER_S)
    events = s.handle_timer(clock.now_ns())
    assert [e.limit for e in of(events, LimitReached)] == ["transfer"]
    assert of(events, TransferFailed)[0].transfer_id == ticket and s.closed
    assert drain(s, clock.now_ns()) == bytes((0x50,))  # a bare SHUTDOWN


def test_ion_style_acks_several_per_segment_finish_a_bundle():
    s, _ = with_ion()
    ticket = s.start_transfer(bytes(150_000), 0)
    drain(s)
    acks = b"".join(w.encode_ack(n) for n in (65536, 131072, 150_000))
    assert of(s.receive_data(acks, 0), TransferAcked)[-1] == TransferAcked(ticket, 150_000, True)
