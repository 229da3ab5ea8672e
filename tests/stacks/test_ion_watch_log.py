"""ION's watch stream, ion.log lines and the events they become: on lines captured from ION 4.1.3 (--enable-ewchar)."""

from __future__ import annotations

from pathlib import Path

from hilnet.stacks.ion.bplist import Listing, parse_bplist
from hilnet.stacks.ion.log import FileCreated, LineStream, file_created, noteworthy, parse_line
from hilnet.stacks.ion.tracker import BundleTracker, key_of
from hilnet.stacks.ion.watch import Sighting, WatchStream

# What a sending node's daemons wrote to their stdout (admin output included), and the receiver's.
SENDER_STDOUT = (
    b"[i] admin pgm using SDR parm overrides from /tmp/ionexp/n1/ion.cfg.\nwmKey:           0\n"
    b"at line 443 of ici/library/platform_sm.c, Can't get shared memory segment: Invalid argument (0)\n"
    b"Stopping ionadmin.\nStopping bpadmin.\n(1,1,0)b(1,1,0)c(1,1,1)b(1,1,1)c"
)
RECEIVER_STDOUT = b"Stopping bpadmin.\n(1,1,849262163033,0)y(1,1,849262163033,0)z"
BPSENDFILE_STDOUT = b"(1,1,849262171423,1)aStopping bpsendfile.\n"

ION_LOG = """\
[2026/11/29-10:09:19] [i] bpclm is running: ipn:1.0
[2026/11/29-10:09:19] [?] Can't find ION security database.
[2026/11/29-10:09:19] [?] Warning: running without bundle security.
[2026/11/29-10:09:20] [x] src from 1970/01/01-00:00:00 to 2026/11/29-10:09:20: (0) 0 0 (1) 0 0 (2) 0 0 (+) 0 0
[2026/11/29-10:09:23] [i] bprecvfile is creating 'testfile1', size 5000.
[2026/11/29-10:09:23] [i] bprecvfile has created 'testfile1', size 5000.
[2026/11/29-10:13:48] at line 111 of bpv7/library/libbp.c, Endpoint is already open. (5044)
[2026/11/29-10:13:48] at line 52 of bpv7/utils/bpsendfile.c, Can't open own endpoint. (ipn:1.1)
"""


def test_watch_tokens_with_and_without_milliseconds_among_admin_output():
    got = WatchStream().feed(SENDER_STDOUT)
    assert [(s.letter, s.source, s.msec, s.count) for s in got] == [
        ("b", "ipn:1.1", None, 0),
        ("c", "ipn:1.1", None, 0),
        ("b", "ipn:1.1", None, 1),
        ("c", "ipn:1.1", None, 1),
    ]
    assert WatchStream().feed(BPSENDFILE_STDOUT) == [Sighting("a", "ipn:1.1", 849262171423, 1)]


def test_a_token_cut_by_a_read_is_read_whole_once_the_rest_comes():
    stream = WatchStream()
    whole = RECEIVER_STDOUT
    got = []
    for i in range(0, len(whole), 7):  # every cut point, seven bytes at a time
        got += stream.feed(whole[i : i + 7])
    assert got == [Sighting("y", "ipn:1.1", 849262163033, 0), Sighting("z", "ipn:1.1", 849262163033, 0)]


def test_log_lines_levels_and_the_delivery_line():
    lines = [parse_line(x) for x in ION_LOG.splitlines()]
    assert [ln.level for ln in lines] == ["info", "warning", "warning", "info", "info", "info", "error", "error"]
    assert lines[0].stamp == "2026/11/29-10:09:19" and lines[0].text == "bpclm is running: ipn:1.0"
    assert [file_created(ln) for ln in lines][4:6] == [None, FileCreated("testfile1", 5000)]
    # the security warnings are expected of every hilnet ION node; the failure to open an endpoint is not
    assert [ln.text for ln in lines if noteworthy(ln)] == [
        "at line 111 of bpv7/library/libbp.c, Endpoint is already open. (5044)",
        "at line 52 of bpv7/utils/bpsendfile.c, Can't open own endpoint. (ipn:1.1)",
    ]


def test_line_stream_keeps_a_cut_line_until_its_end():
    s = LineStream()
    assert s.feed(b"[2026/11/29-10:09:23] [i] bprecvfile has cre") == []
    assert s.feed(b"ated 'testfile1', size 5000.\n[2026") == [
        "[2026/11/29-10:09:23] [i] bprecvfile has created 'testfile1', size 5000."
    ]


def test_sender_events_follow_the_bundle_by_source_and_count():
    t = BundleTracker("iss", "ipn:1.1", "tdrs", "tcpclv3")
    (a,) = WatchStream().feed(BPSENDFILE_STDOUT)
    key, events = t.injected(a, "ipn:5.1", 7000, "photos#1", 10)
    assert key == "ipn:1.1/849262171423/1" == key_of("ipn:1.1", 849262171423, 1)
    assert [e.kind for e in events] == ["received", "stored"]
    assert events[1].size == 7000 and events[1].store_bundles == 1 and events[1].tag == "photos#1"
    out = [e for s in WatchStream().feed(b"(1,1,1)b(1,1,1)c") for e in t.sighting(s, 20)]
    assert [(e.kind, e.bundle, getattr(e, "to", None)) for e in out] == [("forwarded", key, "tdrs")]
    assert t.held() == (1, 7000) and t.waiting_for_cl()  # with the CL: still ION's
    assert t.listed(frozenset({key}), 30) == []
    (sent,) = t.listed(frozenset(), 40)  # bplist no longer lists it: ION's copy went
    assert (sent.kind, sent.bundle, sent.to, sent.cla, sent.t_ns) == ("sent", key, "tdrs", "tcpclv3", 40)
    assert t.held() == (0, 0) and not t.waiting_for_cl()


def test_a_token_read_before_its_bundle_was_seen_whole_waits_for_it():
    # the daemons' "b" and "c" can be read before bpsendfile's own "a" (another process, another pipe)
    t = BundleTracker("iss", "ipn:1.1", "tdrs", "tcpclv3")
    assert t.sighting(Sighting("b", "ipn:1.1", None, 4), 5) == []
    assert t.sighting(Sighting("c", "ipn:1.1", None, 4), 6) == []
    key, events = t.injected(Sighting("a", "ipn:1.1", 777, 4), "ipn:5.1", 400, "tweets#1", 7)
    assert [(e.kind, e.bundle) for e in events] == [("received", key), ("stored", key), ("forwarded", key)]
    assert t.forwarded() == {key}
    # and a relay's: its "c" before its "y" was read
    assert t.sighting(Sighting("c", "ipn:9.1", None, 2), 8) == []
    kinds = [e.kind for e in t.sighting(Sighting("y", "ipn:9.1", 55, 2), 9)]
    assert kinds == ["received", "stored", "forwarded"]


def test_deliveries_pair_the_nth_queued_bundle_with_the_nth_file_whichever_is_read_first():
    t = BundleTracker("eac", "ipn:5.1", None, "tcpclv3")
    first, second = key_of("ipn:1.2", 100, 0), key_of("ipn:1.2", 200, 1)
    assert [e.kind for e in t.sighting(Sighting("y", "ipn:1.2", 100, 0), 1)] == ["received", "stored"]
    assert t.delivered_file("testfile1", 10, "aa" * 32, 2) == []  # its 'z' is not read yet
    (d1,) = t.sighting(Sighting("z", "ipn:1.2", 100, 0), 3)
    assert (d1.kind, d1.bundle, d1.sha256, d1.size, d1.source, d1.dest) == (
        "delivered",
        first,
        "aa" * 32,
        10,
        "ipn:1.2",
        "ipn:5.1",
    )
    t.sighting(Sighting("y", "ipn:1.2", 200, 1), 4)
    assert t.sighting(Sighting("z", "ipn:1.2", 200, 1), 5) == []
    (d2,) = t.delivered_file("testfile2", 20, "bb" * 32, 6)
    assert (d2.bundle, d2.sha256) == (second, "bb" * 32)
    assert t.held() == (0, 0)


def test_expiry_and_abandonment():
    t = BundleTracker("tdrs", "ipn:2.1", None, "tcpclv3")
    t.sighting(Sighting("y", "ipn:1.2", 100, 0), 1)
    t.sighting(Sighting("y", "ipn:1.2", 100, 1), 1)
    (exp,) = t.sighting(Sighting("!", "ipn:1.2", None, 0), 2)
    (drop,) = t.sighting(Sighting("~", "ipn:1.2", None, 1), 3)
    assert (exp.kind, exp.bundle) == ("expired", key_of("ipn:1.2", 100, 0))
    assert (drop.kind, drop.bundle) == ("dropped", key_of("ipn:1.2", 100, 1)) and "abandoned" in drop.reason


def test_tokens_of_bundles_sharing_source_and_count_name_the_oldest_they_can_mean():
    # a hilnet agent numbers each millisecond's bundles from 0: three bundles from ipn:1.0, all count 0
    t = BundleTracker("relay", "ipn:2.0", "c", "tcpclv3")
    keys = [key_of("ipn:1.0", msec, 0) for msec in (100, 200, 300)]
    for msec in (100, 200, 300):  # all three arrive while the contact onward is closed
        t.sighting(Sighting("y", "ipn:1.0", msec, 0), 1)
    forwarded = [e.bundle for _ in range(2) for e in t.sighting(Sighting("c", "ipn:1.0", None, 0), 2)]
    assert forwarded == keys[:2]  # in the order they came, not the last one seen twice
    assert [e.bundle for e in t.listed(frozenset({keys[0], keys[2]}), 3)] == [keys[1]]  # the second left
    (exp,) = t.sighting(Sighting("!", "ipn:1.0", None, 0), 4)  # the oldest still held expires first
    assert exp.bundle == keys[0]
    (fwd,) = t.sighting(Sighting("c", "ipn:1.0", None, 0), 5)
    assert fwd.bundle == keys[2] and t.held() == (1, 0)


def test_bplist_report_names_the_bundles_ion_holds():
    text = (Path(__file__).parent / "data" / "bplist-detail.txt").read_text()
    listing = parse_bplist(text)
    assert listing == Listing(frozenset({"ipn:1.2/849262872616/1", "ipn:1.2/849262872244/0"}), 2)
    assert parse_bplist("at line 153 of bpv7/utils/bplist.c, Can't attach to BP.") is None


def test_a_bundle_forwarded_after_bplist_looked_is_not_taken_for_sent():
    t = BundleTracker("iss", "ipn:1.1", "tdrs", "tcpclv3")
    first, second = Sighting("y", "ipn:9.1", 5, 0), Sighting("y", "ipn:9.1", 6, 1)
    for s in (first, second):
        t.sighting(s, 1)
    t.sighting(Sighting("c", "ipn:9.1", None, 0), 2)
    asked = t.forwarded()  # bplist starts; then the second one is forwarded, after it looked
    t.sighting(Sighting("c", "ipn:9.1", None, 1), 3)
    assert [e.bundle for e in t.listed(frozenset(), 4, asked)] == [key_of("ipn:9.1", 5, 0)]
    assert t.forwarded() == {key_of("ipn:9.1", 6, 1)}


def test_the_worker_runs_jobs_in_order_and_fails_the_waiting_ones_when_it_stops():
    import threading

    from hilnet.stacks.ion.worker import Worker

    w = Worker("test")
    failed: list[str] = []
    w.submit(lambda: None, failed.append)  # not started: refused at once
    assert failed == ["the node is not running"]
    w.start()
    started, gate, ran = threading.Event(), threading.Event(), []
    w.submit(lambda: (started.set(), gate.wait(5), ran.append(1)), failed.append)
    w.submit(lambda: ran.append(2), failed.append)
    w.submit(lambda: ran.append(3), failed.append)
    assert started.wait(5)
    threading.Timer(0.2, gate.set).start()
    w.stop("it was stopped")  # the first finishes; the two waiting behind it are told why they will not run
    assert ran == [1] and failed == ["the node is not running", "it was stopped", "it was stopped"]
