"""The sans-I/O TCPCLv4 session, driven with plain bytes and a hand-moved clock."""

from __future__ import annotations

import struct

import pytest

from hilnet.agent.cla import tcpcl_messages as m
from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.tcpcl_events import (
    NS_PER_S,
    SessionConfig,
    SessionEnded,
    SessionUp,
    TransferAcked,
    TransferFailed,
    TransferReceived,
    TransferRefused,
    Violation,
)
from hilnet.agent.cla.tcpcl_session import State, TcpclSession
from hilnet.errors import ClaError


def flat(chunks) -> bytes:
    return b"".join(bytes(c) for c in chunks)


def drain(s: TcpclSession, now: int = 0) -> bytes:
    out = bytearray()
    while chunks := s.data_to_send(now):
        out += flat(chunks)
    return bytes(out)


def pump(a: TcpclSession, b: TcpclSession, now: int = 0, split: int | None = None):
    """Carry bytes both ways until quiet; returns (events of a, events of b)."""
    ev_a, ev_b = [], []
    for _ in range(1000):
        ab, ba = drain(a, now), drain(b, now)
        if not ab and not ba:
            return ev_a, ev_b
        for src, dst, evs in ((ab, b, ev_b), (ba, a, ev_a)):
            step = split or max(1, len(src))
            for i in range(0, len(src), step):
                evs += dst.receive_data(src[i : i + step], now)
    raise AssertionError("sessions never went quiet")


def pair(ka: int = 10, **kw) -> tuple[TcpclSession, TcpclSession, list, list]:
    a = TcpclSession(SessionConfig("ipn:1.0", keepalive_s=ka, **kw), active=True, now_ns=0, expected_peer="ipn:2.0")
    b = TcpclSession(SessionConfig("ipn:2.0", keepalive_s=ka * 3, **kw), active=False, now_ns=0)
    ea, eb = pump(a, b)
    return a, b, ea, eb


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_handshake_negotiates_minimum_keepalive_and_names_peers():
    a, b, ea, eb = pair(ka=7)
    assert a.established and b.established
    (up_a,) = of(ea, SessionUp)
    (up_b,) = of(eb, SessionUp)
    assert up_a.peer_node_id == "ipn:2.0" and up_b.peer_node_id == "ipn:1.0"
    assert up_a.params.keepalive_s == 7 == up_b.params.keepalive_s
    assert up_a.params.tls is False


def test_contact_header_bytes_say_version_4_and_no_tls():
    a = TcpclSession(SessionConfig("ipn:1.0"), active=True, now_ns=0)
    assert drain(a) == b"dtn!\x04\x00"


def test_handshake_survives_one_byte_at_a_time():
    a = TcpclSession(SessionConfig("ipn:1.0"), active=True, now_ns=0)
    b = TcpclSession(SessionConfig("ipn:2.0"), active=False, now_ns=0)
    pump(a, b, split=1)
    assert a.established and b.established


def test_single_segment_transfer_acked_only_after_accept():
    a, b, _, _ = pair()
    tid = a.start_transfer(b"bundle-bytes", 0)
    ea, eb = pump(a, b)
    (rx,) = of(eb, TransferReceived)
    assert rx.data == b"bundle-bytes" and rx.transfer_id == tid
    assert not of(ea, TransferAcked)  # no final ack before the commit
    b.accept_transfer(rx.transfer_id, 0)
    ea, _ = pump(a, b)
    assert of(ea, TransferAcked) == [TransferAcked(tid, 12, True)]


def test_segmented_transfer_acks_each_segment_and_carries_length_extension():
    a, b, _, _ = pair(max_segment=1000)
    data = bytes(range(256)) * 10  # 2560 bytes -> 1000 + 1000 + 560
    tid = a.start_transfer(data, 0)
    first = flat(a.data_to_send(0))
    # START segment: type, flags, tid, ext length 13, Transfer Length item (flags 0, type 1, len 8, 2560)
    assert first[:2] == bytes((m.MsgType.XFER_SEGMENT, m.SegmentFlag.START))
    assert first[10:14] == struct.pack("!I", 13)
    assert first[14:27] == struct.pack("!BHHQ", 0, 1, 8, 2560)
    eb = b.receive_data(first, 0)
    ea, eb2 = pump(a, b, split=333)
    (rx,) = of(eb + eb2, TransferReceived)
    assert rx.data == data
    acks = of(ea, TransferAcked)
    assert [x.acked_len for x in acks] == [1000, 2000]
    assert not any(x.final for x in acks)
    b.accept_transfer(tid, 0)
    ea, _ = pump(a, b)
    assert of(ea, TransferAcked) == [TransferAcked(tid, 2560, True)]


def test_segments_respect_the_peers_segment_mru():
    a = TcpclSession(SessionConfig("ipn:1.0", max_segment=1 << 20), active=True, now_ns=0)
    b = TcpclSession(SessionConfig("ipn:2.0", segment_mru=100), active=False, now_ns=0)
    pump(a, b)
    a.start_transfer(b"x" * 250, 0)
    _, eb = pump(a, b)
    assert len(of(eb, TransferReceived)[0].data) == 250
    assert not of(eb, Violation)


def test_refusal_reaches_the_sender_and_stops_further_segments():
    a, b, _, _ = pair(max_segment=100)
    tid = a.start_transfer(b"y" * 1000, 0)
    b.receive_data(flat(a.data_to_send(0)), 0)  # first segment only
    rx_ack = drain(b)
    assert rx_ack[0] == m.MsgType.XFER_ACK
    # make b refuse by feeding an error path: store full is refuse_transfer after receive;
    # here use the wire directly: b's peer (a) gets an XFER_REFUSE
    ev = a.receive_data(w.encode_xfer_refuse(m.RefuseReason.NO_RESOURCES, tid), 0)
    assert ev == [TransferRefused(tid, m.RefuseReason.NO_RESOURCES)]
    assert a.data_to_send(0) == []  # MUST NOT send more segments of the refused bundle


def test_store_full_refusal_after_receive_sends_no_resources():
    a, b, _, _ = pair()
    tid = a.start_transfer(b"z" * 10, 0)
    _, eb = pump(a, b)
    assert of(eb, TransferReceived)
    b.refuse_transfer(tid, m.RefuseReason.NO_RESOURCES, 0)
    ea, _ = pump(a, b)
    assert ea == [TransferRefused(tid, m.RefuseReason.NO_RESOURCES)]


def test_pipelined_transfers_are_not_interleaved():
    a, b, _, _ = pair(max_segment=10)
    t1 = a.start_transfer(b"a" * 25, 0)
    t2 = a.start_transfer(b"b" * 25, 0)
    _, eb = pump(a, b)
    got = of(eb, TransferReceived)
    assert [(r.transfer_id, r.data) for r in got] == [(t1, b"a" * 25), (t2, b"b" * 25)]


def test_transfer_over_peer_transfer_mru_is_refused_locally():
    a = TcpclSession(SessionConfig("ipn:1.0"), active=True, now_ns=0)
    b = TcpclSession(SessionConfig("ipn:2.0", transfer_mru=100), active=False, now_ns=0)
    pump(a, b)
    with pytest.raises(ClaError):
        a.start_transfer(b"q" * 101, 0)


def test_keepalive_sent_when_idle_and_idle_timeout_ends_session():
    a, b, _, _ = pair(ka=1)
    assert a.next_deadline_ns() == 1 * NS_PER_S
    assert a.handle_timer(NS_PER_S) == []
    assert drain(a, NS_PER_S) == w.KEEPALIVE_BYTES
    # a keeps hearing nothing: at 2 s it gives up with SESS_TERM (Idle timeout)
    ev = a.handle_timer(2 * NS_PER_S)
    assert of(ev, SessionEnded) and not ev[-1].clean
    assert drain(a, 2 * NS_PER_S) == w.encode_sess_term(m.TermReason.IDLE_TIMEOUT)
    assert a.closed


def test_received_keepalives_keep_the_session_alive():
    a, b, _, _ = pair(ka=1)
    for t in range(1, 10):
        now = t * NS_PER_S
        a.handle_timer(now)
        b.handle_timer(now)
        pump(a, b, now)
    assert a.established and b.established


def test_clean_termination_exchanges_sess_term_both_ways():
    a, b, _, _ = pair()
    a.terminate(m.TermReason.UNKNOWN, 0)
    ea, eb = pump(a, b)
    assert of(ea, SessionEnded)[0].clean and of(eb, SessionEnded)[0].clean
    assert a.closed and b.closed


def test_termination_waits_for_the_transfer_in_flight():
    a, b, _, _ = pair()
    tid = a.start_transfer(b"in flight", 0)
    pending = a.start_transfer(b"not begun", 0)
    eb = b.receive_data(flat(a.data_to_send(0)), 0)  # first transfer is on the wire
    ev = a.terminate(m.TermReason.UNKNOWN, 0)
    assert TransferFailed(pending, "session terminating") in ev
    ea, eb2 = pump(a, b)
    assert not a.closed  # b still has to commit
    (rx,) = of(eb + eb2, TransferReceived)
    b.accept_transfer(rx.transfer_id, 0)
    ea, eb = pump(a, b)
    assert TransferAcked(tid, 9, True) in ea
    assert a.closed and b.closed


def test_new_transfer_while_ending_is_refused_session_terminating():
    a, b, _, _ = pair()
    b.terminate(m.TermReason.UNKNOWN, 0)
    a.receive_data(drain(b), 0)  # a replies, both Ending; now a rogue transfer from a
    a.data_to_send(0)
    ev = b.receive_data(w.encode_segment_header(3, 0, 2) + b"hi", 0)
    assert not of(ev, TransferReceived)
    assert drain(b) == w.encode_xfer_refuse(m.RefuseReason.SESSION_TERMINATING, 0)


def test_partial_transfer_is_dropped_when_the_connection_breaks():
    a, b, _, _ = pair(max_segment=10)
    a.start_transfer(b"x" * 100, 0)
    b.receive_data(flat(a.data_to_send(0)), 0)
    ev = b.receive_eof(0)
    assert not of(ev, TransferReceived)
    assert of(ev, SessionEnded) == [SessionEnded("connection closed by peer", False)]


def test_reused_transfer_id_is_not_delivered_twice():
    a, b, _, _ = pair()
    msg = w.encode_segment_header(3, 5, 3) + b"abc"
    (rx,) = of(b.receive_data(msg, 0), TransferReceived)
    b.accept_transfer(5, 0)
    drain(b)
    ev = b.receive_data(msg, 0)
    assert not of(ev, TransferReceived)
    assert of(ev, Violation)[0].reason == "transfer_id_reused"
    assert drain(b) == w.encode_xfer_refuse(m.RefuseReason.COMPLETED, 5)


def test_unknown_noncritical_extensions_are_skipped_and_critical_ones_refused():
    a, b, _, _ = pair()
    skip = w.encode_extensions([m.ExtensionItem(0, 0x8001, b"whatever")])
    crit = w.encode_extensions([m.ExtensionItem(1, 0x8001, b"whatever")])
    ev = b.receive_data(w.encode_segment_header(3, 1, 2, skip) + b"ok", 0)
    assert of(ev, TransferReceived)[0].data == b"ok"
    ev = b.receive_data(w.encode_segment_header(3, 2, 2, crit) + b"no", 0)
    assert not of(ev, TransferReceived)
    assert drain(b) == w.encode_xfer_refuse(m.RefuseReason.EXTENSION_FAILURE, 2)
    assert b.established


def test_critical_unknown_session_extension_ends_with_contact_failure():
    b = TcpclSession(SessionConfig("ipn:2.0"), active=False, now_ns=0)
    b.receive_data(w.encode_contact_header(), 0)
    drain(b)
    crit = m.SessInit(10, 1000, 1000, "ipn:1.0", (m.ExtensionItem(1, 0x7777, b""),))
    ev = b.receive_data(w.encode_sess_init(crit), 0)
    assert of(ev, Violation)[0].reason == "session_ext_critical"
    assert drain(b) == w.encode_sess_term(m.TermReason.CONTACT_FAILURE)
    assert b.closed


def test_noncritical_session_extension_is_ignored():
    b = TcpclSession(SessionConfig("ipn:2.0"), active=False, now_ns=0)
    b.receive_data(w.encode_contact_header(), 0)
    ok = m.SessInit(10, 1000, 1000, "ipn:1.0", (m.ExtensionItem(0, 0x7777, b"\x01\x02"),))
    ev = b.receive_data(w.encode_sess_init(ok), 0)
    assert of(ev, SessionUp)


def test_peer_refusing_before_session_up_ends_with_its_reason():
    a = TcpclSession(SessionConfig("ipn:1.0"), active=True, now_ns=0)
    drain(a)
    ev = a.receive_data(b"dtn!\x04\x00" + w.encode_sess_term(m.TermReason.BUSY), 0)
    assert of(ev, SessionEnded) == [SessionEnded("peer: busy (before session up)", False)]


def test_version_mismatch_passive_sends_header_then_sess_term():
    b = TcpclSession(SessionConfig("ipn:2.0"), active=False, now_ns=0)
    ev = b.receive_data(b"dtn!\x03\x00", 0)
    assert of(ev, SessionEnded)
    assert drain(b) == w.encode_contact_header() + w.encode_sess_term(m.TermReason.VERSION_MISMATCH)


def test_bad_magic_closes_without_sess_term():
    b = TcpclSession(SessionConfig("ipn:2.0"), active=False, now_ns=0)
    ev = b.receive_data(b"GET / HTTP/1.1\r\n", 0)
    assert of(ev, Violation)[0].reason == "bad_magic"
    assert b.closed and drain(b) == b""


def test_unknown_message_type_gets_msg_reject_and_close():
    a, b, _, _ = pair()
    ev = b.receive_data(b"\x42", 0)
    assert of(ev, Violation)[0].reason == "unknown_message_type"
    assert drain(b) == w.encode_msg_reject(m.RejectReason.MESSAGE_TYPE_UNKNOWN, 0x42)
    assert b.closed


def test_ack_for_unknown_transfer_gets_msg_reject_unexpected():
    a, b, _, _ = pair()
    ev = a.receive_data(w.encode_xfer_ack(3, 99, 10), 0)
    assert of(ev, Violation)[0].reason == "ack_unknown_transfer"
    assert drain(a) == w.encode_msg_reject(m.RejectReason.MESSAGE_UNEXPECTED, m.MsgType.XFER_ACK)
    assert a.established


def test_segment_above_our_mru_ends_the_session():
    a, b, _, _ = pair(segment_mru=100)
    ev = b.receive_data(w.encode_segment_header(3, 0, 101), 0)
    assert of(ev, Violation)[0].reason == "segment_mru_exceeded"
    assert b.closed


def test_transfer_longer_than_transfer_mru_is_refused_no_resources():
    a, b, _, _ = pair(transfer_mru=50)
    ev = b.receive_data(
        w.encode_segment_header(2, 0, 40) + b"x" * 40 + w.encode_segment_header(1, 0, 40) + b"x" * 40, 0
    )
    assert not of(ev, TransferReceived)
    out = drain(b)
    assert out.endswith(w.encode_xfer_refuse(m.RefuseReason.NO_RESOURCES, 0))
    assert b.established


def test_announced_length_mismatch_is_refused_not_acceptable():
    a, b, _, _ = pair()
    ext = w.encode_transfer_length(10)
    ev = b.receive_data(w.encode_segment_header(2, 0, 4, ext) + b"abcd" + w.encode_segment_header(1, 0, 4) + b"efgh", 0)
    assert not of(ev, TransferReceived)
    assert drain(b).endswith(w.encode_xfer_refuse(m.RefuseReason.NOT_ACCEPTABLE, 0))


def test_handshake_timeout():
    b = TcpclSession(SessionConfig("ipn:2.0", handshake_timeout_ns=5), active=False, now_ns=0)
    assert b.next_deadline_ns() == 5
    ev = b.handle_timer(5)
    assert of(ev, SessionEnded) and b.state is State.CLOSED


def test_empty_bundle_is_a_single_empty_segment():
    a, b, _, _ = pair()
    tid = a.start_transfer(b"", 0)
    _, eb = pump(a, b)
    assert of(eb, TransferReceived) == [TransferReceived(tid, b"")]
