import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hilnet.agent.nodes import NodeMap, node_id
from hilnet.agent.router import Decision, Route, Router, earliest_arrival, route_arrival, transmit_ns
from hilnet.errors import InputError
from hilnet.scenario.contact import Contact

S = 1_000_000_000
MS = 1_000_000


def C(frm, to, start_s, end_s, rate, owlt_ms=0):
    return Contact(frm, to, int(start_s * S), int(end_s * S), rate, owlt_ms * MS)


# -- earliest_arrival -----------------------------------------------------------


def test_direct_contact_waits_for_start_then_pays_rate_and_owlt():
    c = C("iss", "tdrs", 10, 100, 1000, owlt_ms=120)
    r = earliest_arrival([c], "iss", "tdrs", 0, 500)
    assert r == Route((c,), 10 * S + 500 * MS + 120 * MS, "tdrs", 10 * S)


def test_rate_and_owlt_are_exact_to_the_nanosecond():
    # 10 bytes at 3 bytes/s is 3.333...s: rounded up to the next ns, never down
    c = Contact("a", "b", 7, 100 * S, 3, 1)
    r = earliest_arrival([c], "a", "b", 0, 10)
    assert transmit_ns(10, 3) == 3_333_333_334
    assert r.arrival_ns == 7 + 3_333_333_334 + 1
    assert r.first_send_ns == 7


def test_contact_must_finish_the_bundle_before_it_ends():
    c = C("a", "b", 0, 10, 100)  # volume 1000 bytes
    assert earliest_arrival([c], "a", "b", 0, 1000).arrival_ns == 10 * S
    assert earliest_arrival([c], "a", "b", 0, 1001) is None
    # starting late, the rest of the window is too short
    assert earliest_arrival([c], "a", "b", 5 * S, 600) is None
    assert earliest_arrival([c], "a", "b", 5 * S, 500).arrival_ns == 10 * S
    # a contact that has ended carries nothing, even a zero-byte bundle
    assert earliest_arrival([c], "a", "b", 10 * S, 0) is None


def test_two_hops_with_waiting_at_the_relay():
    up = C("iss", "tdrs", 0, 10, 1000, owlt_ms=100)
    down = C("tdrs", "gs", 300, 400, 2000, owlt_ms=200)
    r = earliest_arrival([down, up], "iss", "gs", 1 * S, 1000)
    assert r.hops == (up, down)
    assert r.next_hop == "tdrs"
    assert r.first_send_ns == 1 * S
    # relay holds it from 2.1 s to 300 s, then 0.5 s to send and 0.2 s of light time
    assert r.arrival_ns == 300 * S + 500 * MS + 200 * MS
    assert r.nodes == ("iss", "tdrs", "gs")


def test_relay_cannot_forward_before_the_whole_bundle_arrived():
    up = C("a", "b", 0, 100, 100, owlt_ms=1000)  # 100 bytes: done at 1 s, at b at 2 s
    down = C("b", "c", 0, 100, 100)
    r = earliest_arrival([up, down], "a", "c", 0, 100)
    assert r.arrival_ns == 2 * S + 1 * S


def test_picks_a_later_but_faster_path():
    slow = C("a", "c", 0, 1000, 10)  # 1000 bytes take 100 s
    later_fast = [C("a", "b", 20, 30, 10**6, owlt_ms=5), C("b", "c", 40, 50, 10**6, owlt_ms=5)]
    r = earliest_arrival([slow, *later_fast], "a", "c", 0, 1000)
    assert r.hops == tuple(later_fast)
    assert r.first_send_ns == 20 * S
    assert r.arrival_ns == 40 * S + transmit_ns(1000, 10**6) + 5 * MS
    # a later direct window that is faster also beats the slow one that is open now
    fast_direct = C("a", "c", 20, 30, 10**6)
    assert earliest_arrival([slow, fast_direct], "a", "c", 0, 1000).hops == (fast_direct,)


def test_deadline_is_inclusive_and_bounds_arrival():
    c = C("a", "b", 0, 100, 1000, owlt_ms=10)
    arrival = earliest_arrival([c], "a", "b", 0, 1000).arrival_ns
    assert earliest_arrival([c], "a", "b", 0, 1000, deadline_ns=arrival).arrival_ns == arrival
    assert earliest_arrival([c], "a", "b", 0, 1000, deadline_ns=arrival - 1) is None


def test_deadline_prefers_a_path_that_makes_it_over_none():
    late = C("a", "c", 50, 60, 1000)
    assert earliest_arrival([late], "a", "c", 0, 10, deadline_ns=40 * S) is None


def test_no_path_unknown_nodes_and_source_is_dest():
    c = C("a", "b", 0, 10, 100)
    assert earliest_arrival([c], "b", "a", 0, 1) is None  # contacts are one way
    assert earliest_arrival([c], "a", "zz", 0, 1) is None
    assert earliest_arrival([c], "a", "a", 5, 1) == Route((), 5, "a", 5)
    with pytest.raises(ValueError):
        earliest_arrival([c], "a", "b", 0, -1)


def test_booked_bytes_go_first_and_use_up_volume():
    c = C("a", "b", 0, 10, 100)  # 1000 bytes
    r = earliest_arrival([c], "a", "b", 0, 300, booked={c: 600})
    assert r.first_send_ns == 6 * S and r.arrival_ns == 9 * S
    assert earliest_arrival([c], "a", "b", 0, 401, booked={c: 600}) is None


def test_route_arrival_prices_a_given_path():
    hops = [C("a", "b", 0, 10, 100, owlt_ms=10), C("b", "c", 5, 10, 100)]
    assert route_arrival(hops, 0, 100) == 6 * S
    assert route_arrival(list(reversed(hops)), 0, 100) is None  # does not chain
    assert route_arrival(hops, 0, 600) is None  # second hop too short


# -- Router ---------------------------------------------------------------------


def test_router_direct_decision_carries_the_route():
    c = C("iss", "tdrs", 10, 100, 1000)
    d = Router("iss", [c]).route("tdrs", 0, 1000, 10**3 * S)
    assert d.next_hop == "tdrs" and d.send_at_ns == 10 * S and d.arrival_ns == 11 * S
    assert d.route.hops == (c,)
    assert d.reason == "contact plan"


def test_router_local_destination():
    assert Router("gs").route("gs", 7, 10, 100) == Decision("gs", 7, 7, "local")


def test_volume_exhaustion_forces_the_next_window():
    first, second = C("a", "b", 0, 10, 100), C("a", "b", 100, 110, 100)
    router = Router("a", [first, second])
    got = []
    for _ in range(3):
        d = router.route("b", 0, 400, 10**4 * S)
        router.book(d.route, 400)
        got.append((d.route.hops[0], d.arrival_ns))
    # 400 + 400 fit in the first 1000-byte window, the third goes in the next one
    assert got == [(first, 4 * S), (first, 8 * S), (second, 104 * S)]
    assert router.booked(first) == 800 and router.booked(second) == 400
    # releasing a booking frees the volume again
    router.release(d.route, 400)
    router.release(Route((first,), 0, "b", 0), 400)
    assert router.route("b", 0, 400, 10**4 * S).route.hops == (first,)
    router.forget_past(10 * S)
    assert router.booked(first) == 0


def test_lifetime_too_short_means_wait_with_a_reason():
    router = Router("a", [C("a", "b", 100, 200, 100)])
    d = router.route("b", 0, 100, expires_at_ns=50 * S)
    assert d.next_hop is None and d.route is None
    assert d.reason == f"no route to b before expiry at {50 * S} ns (earliest arrival {101 * S} ns)"
    assert router.route("b", 60 * S, 1, expires_at_ns=60 * S).reason == f"expired at {60 * S} ns"


def test_no_route_reason_names_down_links():
    router = Router("a", [C("a", "b", 0, 200, 100)])
    router.contact_failed("a", "b", 5 * S)
    d = router.route("b", 6 * S, 100, 10**4 * S)
    assert d == Decision(None, None, None, "no route to b in the contact plan for 100 bytes (down: a->b)")
    assert Router("a").route("b", 0, 1, 10).reason == "no contact plan and no static route to b"


def test_contact_failure_reroutes_over_another_path():
    via_b = [C("a", "b", 0, 100, 1000), C("b", "d", 0, 100, 1000)]
    via_c = [C("a", "c", 0, 100, 500), C("c", "d", 0, 100, 500)]
    router = Router("a", via_b + via_c)
    assert router.route("d", 1 * S, 500, 10**3 * S).next_hop == "b"
    router.contact_failed("a", "b", 1 * S)
    d = router.route("d", 1 * S, 500, 10**3 * S)
    assert d.next_hop == "c" and d.route.hops == tuple(via_c)
    assert router.neighbours_up(1 * S) == {"c"}
    router.link_up("a", "b")
    assert router.route("d", 2 * S, 500, 10**3 * S).next_hop == "b"


def test_contact_failure_waits_for_the_next_window_then_expires():
    w1, w2 = C("a", "b", 0, 100, 1000), C("a", "b", 200, 300, 1000)
    router = Router("a", [w1, w2])
    router.contact_failed("a", "b", 50 * S)
    assert router.is_down("a", "b", 99 * S) and not router.is_down("a", "b", 100 * S)
    d = router.route("b", 50 * S, 1000, 10**3 * S)
    assert (d.next_hop, d.send_at_ns, d.route.hops) == ("b", 200 * S, (w2,))
    assert router.contacts_active(50 * S) == ()
    assert router.next_change_ns(50 * S) == 100 * S
    # the bundle is never dropped: past expiry of the failure, w2 is still there
    assert router.route("b", 150 * S, 1000, 10**3 * S).route.hops == (w2,)
    assert router.contacts_active(250 * S) == (w2,)


def test_failure_outside_any_window_lasts_until_link_up():
    router = Router("a", [C("a", "b", 100, 200, 1000)])
    router.contact_failed("a", "b", 10 * S)
    assert router.route("b", 10 * S, 1, 10**3 * S).next_hop is None
    assert router.route("b", 150 * S, 1, 10**3 * S).next_hop is None
    router.link_up("a", "b")
    assert router.route("b", 150 * S, 1, 10**3 * S).next_hop == "b"


def test_excluded_nodes_are_never_relays():
    via_b = [C("a", "b", 0, 100, 1000), C("b", "d", 0, 100, 1000)]
    via_c = [C("a", "c", 50, 100, 1000), C("c", "d", 50, 100, 1000)]
    router = Router("a", via_b + via_c)
    assert router.route("d", 0, 10, 10**3 * S, excluded=frozenset({"b"})).next_hop == "c"
    assert router.route("d", 0, 10, 10**3 * S, excluded=frozenset({"b", "c"})).next_hop is None


def test_static_routes_without_a_plan():
    router = Router("ipn:1.0", static_routes={"ipn:4.0": "ipn:2.0", "*": "ipn:3.0"})
    assert router.route("ipn:4.0", 5, 100, 10**9) == Decision("ipn:2.0", 5, None, "static route")
    assert router.route("ipn:9.0", 5, 100, 10**9) == Decision("ipn:3.0", 5, None, "default route")
    router.contact_failed("ipn:1.0", "ipn:2.0", 5)
    d = router.route("ipn:4.0", 6, 100, 10**9)
    assert d == Decision(None, None, None, "static route next hop ipn:2.0 is down")
    router.link_up("ipn:1.0", "ipn:2.0")
    assert router.route("ipn:4.0", 7, 100, 10**9).next_hop == "ipn:2.0"
    assert router.route("ipn:4.0", 7, 100, 10**9, excluded=frozenset({"ipn:2.0"})).next_hop is None


def test_static_route_is_the_fallback_when_the_plan_has_no_route():
    router = Router("a", [C("a", "b", 0, 10, 100)], static_routes={"*": "b"})
    assert router.route("b", 0, 100, 10**3 * S).reason == "contact plan"
    assert router.route("z", 0, 100, 10**3 * S) == Decision("b", 0, None, "default route")


def test_next_change_and_neighbours():
    router = Router("a", [C("a", "b", 10, 20, 1), C("a", "c", 15, 30, 1), C("x", "a", 1, 2, 1)])
    assert router.next_change_ns(0) == 10 * S
    assert router.next_change_ns(10 * S) == 15 * S
    assert router.neighbours_up(16 * S) == {"b", "c"}
    assert router.next_change_ns(30 * S) is None


# -- property: Dijkstra equals brute-force enumeration -------------------------------


def brute_force(contacts, source, dest, t0, size, deadline, booked):
    """Minimum arrival over every chain of distinct contacts, priced from the rule in the docs."""
    best = None

    def hop(c, t):
        b = booked.get(c, 0)
        if c.rate <= 0 or b + size > c.rate * (c.end_ns - c.start_ns) // S:
            return None
        start = max(t, c.start_ns + (-(-b * S // c.rate)))
        done = start + (-(-size * S // c.rate))
        if start >= c.end_ns or done > c.end_ns:
            return None
        return done + c.owlt_ns

    def walk(node, t, used):
        nonlocal best
        if node == dest:
            if deadline is None or t <= deadline:
                best = t if best is None else min(best, t)
            return
        for i, c in enumerate(contacts):
            if i not in used and c.frm == node:
                arrival = hop(c, t)
                if arrival is not None:
                    walk(c.to, arrival, used | {i})

    if deadline is None or t0 <= deadline:
        walk(source, t0, frozenset())
    return best


NODES = "abcd"
contact_st = st.builds(
    lambda frm, to, start, length, rate, owlt: Contact(
        frm, to, start * S // 4, (start + length) * S // 4, rate, owlt * MS
    ),
    st.sampled_from(NODES),
    st.sampled_from(NODES),
    st.integers(0, 40),
    st.integers(0, 40),
    st.integers(1, 1000),
    st.integers(0, 3000),
).filter(lambda c: c.frm != c.to)


@settings(max_examples=300, deadline=None)
@given(
    contacts=st.lists(contact_st, max_size=10),
    t0=st.integers(0, 12 * S),
    size=st.integers(0, 800),
    deadline=st.none() | st.integers(0, 20 * S),
    booking=st.lists(st.integers(0, 500), max_size=10),
)
def test_earliest_arrival_equals_brute_force(contacts, t0, size, deadline, booking):
    booked = {c: b for c, b in zip(contacts, booking)}
    for booked_map in ({}, booked):
        expect = brute_force(contacts, "a", "d", t0, size, deadline, booked_map)
        route = earliest_arrival(contacts, "a", "d", t0, size, deadline_ns=deadline, booked=booked_map or None)
        if expect is None:
            assert route is None
            continue
        assert route is not None and route.arrival_ns == expect
        # the route is a real chain from a to d that achieves the arrival it claims
        assert route.hops[0].frm == "a" and route.hops[-1].to == "d"
        assert route_arrival(route.hops, t0, size, booked_map) == route.arrival_ns
        assert route.next_hop == route.hops[0].to
        assert route.first_send_ns >= max(t0, route.hops[0].start_ns)


# -- node names <-> EIDs ------------------------------------------------------------


def test_node_map_both_ways():
    nodes = NodeMap({"iss": "ipn:1.0", "gs": "dtn://gs/"})
    assert nodes.eid_of("iss") == "ipn:1.0" and nodes["gs"] == "dtn://gs/"
    assert nodes.name_of("ipn:1.5") == "iss"
    assert nodes.name_of("dtn://gs/photos/3") == "gs"
    assert nodes.name_or_eid("ipn:9.1") == "ipn:9.0"
    assert dict(nodes) == {"iss": "ipn:1.0", "gs": "dtn://gs/"}
    with pytest.raises(KeyError):
        nodes.name_of("ipn:2.0")


@pytest.mark.parametrize(
    "eid,nid", [("ipn:2.0", "ipn:2.0"), ("ipn:2.17", "ipn:2.0"), ("dtn://n/", "dtn://n/"), ("dtn://n/a/b", "dtn://n/")]
)
def test_node_id(eid, nid):
    assert node_id(eid) == nid


@pytest.mark.parametrize(
    "bad", ["ipn:2", "ipn:02.0", "ipn:-1.0", "dtn:none", "dtn://", "tcp://x", "", 5, f"ipn:{2**64}.0"]
)
def test_node_id_rejects(bad):
    with pytest.raises(InputError):
        node_id(bad)


def test_node_map_rejects_shared_ids():
    with pytest.raises(InputError, match="share the node id ipn:1.0"):
        NodeMap({"a": "ipn:1.0", "b": "ipn:1.3"})
