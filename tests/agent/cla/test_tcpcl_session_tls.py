"""TLS negotiation of the sans-I/O TCPCLv4 session (RFC 9174 4.2-4.4), on a virtual clock.

The test plays the driver: where the session says StartTls it reports the
handshake's outcome (the node ids of the peer's validated certificate), and
carries the octets that would then travel inside TLS.
"""

from __future__ import annotations

from hilnet.agent.cla import tcpcl_messages as m
from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.tcpcl_events import (
    NS_PER_S,
    SessionConfig,
    SessionEnded,
    SessionUp,
    StartTls,
    TlsFailed,
    Violation,
)
from hilnet.agent.cla.tcpcl_security import TlsPolicy, negotiate, same_node_id
from hilnet.agent.cla.tcpcl_session import State, TcpclSession
from hilnet.clock import VirtualClock

OFF, ENABLE, REQUIRE = TlsPolicy.OFF, TlsPolicy.ENABLE, TlsPolicy.REQUIRE


def drain(s: TcpclSession, now: int) -> bytes:
    out = bytearray()
    while chunks := s.data_to_send(now):
        out += b"".join(bytes(c) for c in chunks)
    return bytes(out)


def pump(a: TcpclSession, b: TcpclSession, clock: VirtualClock) -> tuple[list, list]:
    ev_a: list = []
    ev_b: list = []
    for _ in range(100):
        now = clock.now_ns()
        ab, ba = drain(a, now), drain(b, now)
        if not ab and not ba:
            return ev_a, ev_b
        if ab:
            ev_b += b.receive_data(ab, now)
        if ba:
            ev_a += a.receive_data(ba, now)
    raise AssertionError("sessions never went quiet")


def sessions(pa: TlsPolicy, pb: TlsPolicy, clock: VirtualClock, expect: str = "ipn:2.0"):
    a = TcpclSession(SessionConfig("ipn:1.0", tls=pa), active=True, now_ns=clock.now_ns(), expected_peer=expect)
    b = TcpclSession(SessionConfig("ipn:2.0", tls=pb), active=False, now_ns=clock.now_ns())
    return a, b


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_policy_sets_can_tls_in_the_contact_header():
    clock = VirtualClock()
    for policy, flag in ((OFF, 0), (ENABLE, 1), (REQUIRE, 1)):
        s = TcpclSession(SessionConfig("ipn:1.0", tls=policy), active=True, now_ns=clock.now_ns())
        assert drain(s, clock.now_ns()) == b"dtn!\x04" + bytes([flag])


def test_negotiation_table():
    assert negotiate(OFF, 1) == (False, None)
    assert negotiate(ENABLE, 0) == (False, None)
    assert negotiate(ENABLE, 1) == (True, None)
    assert negotiate(REQUIRE, 1) == (True, None)
    enable, why = negotiate(REQUIRE, 0)
    assert not enable and why and "requires" in why


def test_both_offering_tls_starts_tls_then_sess_init_inside_it():
    clock = VirtualClock(start_ns=5 * NS_PER_S)
    a, b = sessions(REQUIRE, ENABLE, clock)
    ea, eb = pump(a, b, clock)
    assert of(ea, StartTls) == [StartTls(server_side=False)]  # the active side is the TLS client
    assert of(eb, StartTls) == [StartTls(server_side=True)]
    assert a.state is State.TLS and b.state is State.TLS
    # Nothing but the contact headers went in the clear: no SESS_INIT before TLS is up.
    assert drain(a, clock.now_ns()) == b"" == drain(b, clock.now_ns())
    clock.advance(NS_PER_S // 10)
    ea = a.tls_established(("ipn:2.0",), clock.now_ns())
    eb = b.tls_established(("ipn:1.0",), clock.now_ns())
    assert not ea and not eb
    ea, eb = pump(a, b, clock)
    (up_a,), (up_b,) = of(ea, SessionUp), of(eb, SessionUp)
    assert up_a.params.tls and up_b.params.tls
    assert up_a.peer_node_id == "ipn:2.0" and up_b.peer_node_id == "ipn:1.0"


def test_enable_against_off_falls_back_to_plain():
    clock = VirtualClock()
    a, b = sessions(ENABLE, OFF, clock)
    ea, eb = pump(a, b, clock)
    assert not of(ea + eb, StartTls) and not of(ea + eb, TlsFailed)
    (up_a,) = of(ea, SessionUp)
    assert up_a.params.tls is False and b.established


def test_require_against_plain_peer_refuses_with_reasons_on_both_sides():
    clock = VirtualClock()
    a, b = sessions(OFF, REQUIRE, clock)
    ea, eb = pump(a, b, clock)
    (fail_b,) = of(eb, TlsFailed)
    assert "does not offer TLS" in fail_b.reason
    (fail_a,) = of(ea, TlsFailed)  # the plain side hears why, not just "contact failure"
    assert "offers TLS" in fail_a.reason and "'off'" in fail_a.reason
    assert a.closed and b.closed
    assert of(ea, SessionEnded)[0].reason == fail_a.reason


def test_require_active_against_plain_passive_sends_contact_failure():
    clock = VirtualClock()
    a, b = sessions(REQUIRE, OFF, clock)
    drain(a, clock.now_ns())
    ev = a.receive_data(w.encode_contact_header(m.ContactFlag.NONE), clock.now_ns())
    assert "does not offer TLS" in of(ev, TlsFailed)[0].reason
    assert drain(a, clock.now_ns()) == w.encode_sess_term(m.TermReason.CONTACT_FAILURE)
    assert a.closed


def test_active_refuses_a_certificate_for_another_node_before_its_sess_init():
    clock = VirtualClock()
    a, b = sessions(REQUIRE, REQUIRE, clock, expect="ipn:2.0")
    pump(a, b, clock)
    ev = a.tls_established(("ipn:3.0",), clock.now_ns())
    (fail,) = of(ev, TlsFailed)
    assert "ipn:3.0" in fail.reason and "ipn:2.0" in fail.reason
    assert fail.claimed == "ipn:2.0" and fail.certified == ("ipn:3.0",)
    # Inside TLS only a SESS_TERM goes out: the wrong peer never sees our SESS_INIT.
    assert drain(a, clock.now_ns()) == w.encode_sess_term(m.TermReason.CONTACT_FAILURE)
    assert a.closed


def test_passive_refuses_a_sess_init_its_certificate_does_not_authenticate():
    clock = VirtualClock()
    b = TcpclSession(SessionConfig("ipn:2.0", tls=REQUIRE), active=False, now_ns=clock.now_ns())
    b.receive_data(w.encode_contact_header(m.ContactFlag.CAN_TLS), clock.now_ns())
    drain(b, clock.now_ns())
    b.tls_established(("ipn:9.0",), clock.now_ns())
    ev = b.receive_data(w.encode_sess_init(m.SessInit(10, 1000, 1000, "ipn:1.0")), clock.now_ns())
    (fail,) = of(ev, TlsFailed)
    assert fail.claimed == "ipn:1.0" and fail.certified == ("ipn:9.0",)
    assert "claims node id ipn:1.0" in fail.reason and "ipn:9.0" in fail.reason
    assert not of(ev, SessionUp)
    assert drain(b, clock.now_ns()) == w.encode_sess_term(m.TermReason.CONTACT_FAILURE)


def test_failed_tls_handshake_closes_without_sess_term():
    clock = VirtualClock()
    a, b = sessions(ENABLE, ENABLE, clock)
    pump(a, b, clock)
    ev = a.tls_failed("certificate verify failed: unable to get local issuer certificate", clock.now_ns())
    (fail,) = of(ev, TlsFailed)
    assert "TLS handshake failed" in fail.reason and "local issuer" in fail.reason
    assert of(ev, SessionEnded) and drain(a, clock.now_ns()) == b""


def test_tls_handshake_is_bounded_by_the_handshake_timeout():
    clock = VirtualClock()
    cfg = SessionConfig("ipn:1.0", tls=REQUIRE, handshake_timeout_ns=3 * NS_PER_S)
    a = TcpclSession(cfg, active=True, now_ns=clock.now_ns())
    drain(a, clock.now_ns())
    a.receive_data(w.encode_contact_header(m.ContactFlag.CAN_TLS), clock.now_ns())
    assert a.state is State.TLS
    clock.advance(2 * NS_PER_S)
    assert not a.handle_timer(clock.now_ns())
    clock.set(a.next_deadline_ns() or 0)
    ev = a.handle_timer(clock.now_ns())
    (ended,) = of(ev, SessionEnded)
    assert ended.reason == "no TLS handshake in time"
    assert [f.reason for f in of(ev, TlsFailed)] == ["no TLS handshake in time"]


def test_plaintext_after_the_contact_header_is_refused_when_tls_was_agreed():
    clock = VirtualClock()
    b = TcpclSession(SessionConfig("ipn:2.0", tls=ENABLE), active=False, now_ns=clock.now_ns())
    sess_init = w.encode_sess_init(m.SessInit(10, 1000, 1000, "ipn:1.0"))
    ev = b.receive_data(w.encode_contact_header(m.ContactFlag.CAN_TLS) + sess_init, clock.now_ns())
    assert [v.reason for v in of(ev, Violation)] == ["plaintext_before_tls"]
    assert b.closed and not of(ev, SessionUp)


def test_tls_outcome_outside_the_tls_state_is_ignored():
    clock = VirtualClock()
    a, b = sessions(OFF, OFF, clock)
    pump(a, b, clock)
    assert a.tls_established(("ipn:2.0",), clock.now_ns()) == []
    assert a.tls_failed("late", clock.now_ns()) == []
    assert a.established


def test_node_ids_compare_as_eids():
    assert same_node_id("ipn:2.0", "ipn:2.0")
    assert not same_node_id("ipn:2.0", "ipn:20.0")
    assert not same_node_id("dtn://a/", "dtn://b/")
    assert not same_node_id("not a uri", "ipn:2.0")
