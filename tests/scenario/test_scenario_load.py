"""The scenario loader: a table of bad scenarios, each with its exact FILE:LINE:COL messages."""

from __future__ import annotations

import pytest

from hilnet.bundle.eid import parse_eid
from hilnet.errors import InputError, ScenarioError, ScenarioErrors
from hilnet.scenario.load import load_scenario, load_scenario_text

HEAD = "hilnet: 1\nclock: {scale: 60, duration: 95m}\nnodes:\n  iss: {eid: ipn:1.0}\n  gs: {eid: ipn:2.0}\n"
LINK = "links:\n  up:\n    ends: [iss, gs]\n    medium: ethernet\n"

# name -> (scenario text, every error it must produce, without the "s.yaml:" prefix)
BAD = {
    "unknown_top_key": (
        HEAD + "trafic: []\n",
        [
            "6:1: unknown key 'trafic' in the scenario; did you mean 'traffic'? expected one of: hilnet, name, description, seed, clock, tls, nodes, links, traffic, faults, expect",
        ],
    ),
    "unknown_link_key": (
        HEAD + LINK + "    dealy: 120ms\n",
        [
            "10:5: unknown key 'dealy' in link 'up'; did you mean 'delay'? expected one of: ends, medium, cl, up, changes, delay, jitter, rate, baud, framing, loss, loss-model, bit-error-rate, queue, queue-units, reorder, geometry-step, grazing-altitude",
        ],
    ),
    "tls_policy_misspelt": (
        "hilnet: 1\nclock: {duration: 95m}\ntls: requir\nnodes:\n  iss: {eid: ipn:1.0, tls: 1}\n",
        [
            "3:6: tls is 'requir'; did you mean 'require'?; expected off or enable or require",
            "5:28: node 'iss' tls is the number 1; expected off or enable or require",
        ],
    ),
    "wrong_type_scale": (
        "hilnet: 1\nclock: {scale: fast, duration: 95m}\nnodes:\n  iss: {eid: ipn:1.0}\n",
        [
            "2:16: clock.scale (scenario seconds per wall second) is the text 'fast'; expected a number above 0",
        ],
    ),
    "wrong_type_nodes": (
        "hilnet: 1\nclock: {duration: 95m}\nnodes: [iss, gs]\n",
        [
            "3:8: nodes is a list; expected a mapping of name: {eid: ipn:N.0}",
        ],
    ),
    "version": (
        "hilnet: 2\nclock: {duration: 95m}\nnodes:\n  iss: {eid: ipn:1.0}\n",
        [
            "1:9: format version 2 is not one this hilnet reads; expected hilnet: 1",
        ],
    ),
    "missing_keys": (
        "name: x\n",
        [
            "1:1: the scenario lacks 'hilnet', 'clock', 'nodes'; expected them among: hilnet, name, description, seed, clock, tls, nodes, links, traffic, faults, expect",
        ],
    ),
    "unknown_end": (
        HEAD + "links:\n  l:\n    ends: [iss, tdrs]\n    medium: ethernet\n",
        [
            "8:17: link 'l' end 'tdrs' is not a node; expected one of: iss, gs",
        ],
    ),
    "self_link": (
        HEAD + "links:\n  l:\n    ends: [iss, iss]\n    medium: ethernet\n",
        [
            "8:17: link 'l' joins 'iss' to itself; expected two different nodes",
        ],
    ),
    "three_ends": (
        HEAD + "links:\n  l:\n    ends: [iss, gs, iss]\n    medium: ethernet\n",
        [
            "8:11: link 'l' ends has 3 items; expected two node names such as [iss, tdrs-w]",
        ],
    ),
    "overlap": (
        HEAD + LINK + "    up: [0m-38m, 30m-50m]\n",
        [
            "10:18: link 'up' window '30m-50m' overlaps '0m-38m' (line 10); expected windows that do not overlap",
        ],
    ),
    "reversed": (
        HEAD + LINK + "    up: [40m-30m]\n",
        [
            "10:10: link 'up' window '40m-30m' ends before it starts; expected START-END with START < END",
        ],
    ),
    "past_duration": (
        HEAD + LINK + "    up: [90m-100m]\n",
        [
            "10:10: link 'up' window '90m-100m' ends after clock.duration (1h35m); expected windows within it",
        ],
    ),
    "not_window": (
        HEAD + LINK + "    up: [10m]\n",
        [
            "10:10: link 'up' window '10m' is not START-END; expected a window such as 10m-48m",
        ],
    ),
    "duplicate_node": (
        HEAD + "  iss: {eid: ipn:3.0}\n",
        [
            "6:3: duplicate key 'iss' (first at line 4); expected each key once",
        ],
    ),
    "duplicate_eid": (
        HEAD + "  gs2: {eid: ipn:2.0}\n",
        [
            "6:14: node 'gs2' eid ipn:2.0 is already the eid of another node (line 5); expected each node to have its own eid",
        ],
    ),
    "duplicate_link_key": (
        HEAD + LINK + "    medium: serial\n",
        [
            "10:5: duplicate key 'medium' (first at line 9); expected each key once",
        ],
    ),
    "bad_eid": (
        "hilnet: 1\nclock: {duration: 95m}\nnodes:\n  iss: {eid: 'ipn:1'}\n  gs: {eid: http://gs/}\n  x: {eid: ipn:0.0}\n  y: {eid: ipn:4.1}\n  z: {eid: dtn://z/inbox}\n",
        [
            "4:14: node 'iss' eid 'ipn:1' is not a node endpoint id; expected ipn:N.0 (such as ipn:1.0) or dtn://name/ (such as dtn://iss/)",
            "5:13: node 'gs' eid 'http://gs/' is not a node endpoint id; expected ipn:N.0 (such as ipn:1.0) or dtn://name/ (such as dtn://iss/)",
            "6:12: node 'x' eid ipn:0.0: node number 0 is outside 1..2^64-1; expected an eid such as ipn:1.0",
            "7:12: node 'y' eid ipn:4.1 names service 1, not the node; expected ipn:4.0 (RFC 9171 4.2.5.1.2: only service 0 identifies a node)",
            "8:12: node 'z' eid dtn://z/inbox has a demux after the node name; expected dtn://z/ (RFC 9171 4.2.5.1.1: a node id ends at '/')",
        ],
    ),
    "serial_rate": (
        HEAD + "links:\n  l:\n    ends: [iss, gs]\n    medium: serial\n    rate: 115200bit/s\n",
        [
            "10:5: link 'l': a serial link is paced by 'baud', not 'rate'; expected baud: 115200 (a symbol rate: 8N1 moves baud/10 bytes per second)",
        ],
    ),
    "ethernet_baud": (
        HEAD + LINK + "    baud: 9600\n",
        [
            "10:5: link 'up': an ethernet link is paced by 'rate', not 'baud'; expected rate: 10Mbit/s (or medium: serial)",
        ],
    ),
    "bad_unit": (
        HEAD + LINK + "    delay: 10 parsecs\n    loss: 150%\n",
        [
            "10:12: link 'up' delay: cannot read duration '10 parsecs' at '10parsecs'; expected a duration such as 250ms, 1.5s, 2m or 1h30m",
            "11:11: link 'up' loss: '150%' is outside 0..1 (0%..100%); expected a fraction such as 0.5%, 1e-6 or 0.005, between 0 and 1",
        ],
    ),
    "jitter": (
        HEAD + LINK + "    delay: 10ms\n    jitter: 20ms\n",
        [
            "11:13: link 'up' iss->gs: jitter 20ms is larger than delay 10ms; expected jitter <= delay (nothing arrives before it was sent)",
        ],
    ),
    "bad_direction": (
        HEAD + LINK + "    iss->mars: {rate: 1Mbit/s}\n",
        [
            "10:5: link 'up': 'iss->mars' names 'mars', not an end of this link; expected iss->gs or gs->iss",
        ],
    ),
    "unreachable": (
        HEAD + "  moon: {eid: ipn:3.0}\n" + LINK + "traffic:\n  - {from: iss, to: moon, size: 1KiB}\n",
        [
            "12:21: traffic 'traffic-1': no path from 'iss' to 'moon' in the link graph; expected links that join them, directly or through other nodes",
        ],
    ),
    "traffic_unknown_node": (
        HEAD + LINK + "traffic:\n  - {from: iss, to: gz, size: 1KiB}\n",
        [
            "11:21: traffic 'traffic-1' to 'gz' is not a node; expected one of: iss, gs",
        ],
    ),
    "traffic_count_past": (
        HEAD + LINK + "traffic:\n  - {name: t, from: iss, to: gs, start: 50m, every: 10m, count: 6, size: 1KiB}\n",
        [
            "11:65: traffic 't': the last of 6 injections falls at 1h40m, not before clock.duration (1h35m); expected at most 5",
        ],
    ),
    "traffic_dup_name": (
        HEAD
        + LINK
        + "traffic:\n  - {name: t, from: iss, to: gs, size: 1KiB}\n  - {name: t, from: gs, to: iss, size: 1KiB}\n",
        [
            "12:12: traffic name 't' is already used (line 11); expected each traffic entry to have its own name",
        ],
    ),
    "fault_unknown": (
        HEAD
        + LINK
        + "faults:\n  - {at: 1m, cut: down, for: 1m}\n  - {at: 2m, crash: mars}\n  - {at: 3m, cut: up}\n  - {at: 4m, crash: iss, for: 1m}\n  - {at: 5m}\n",
        [
            "11:19: fault #1 cut 'down' is not a link; expected one of: up",
            "12:21: fault #2 crash 'mars' is not a node; expected one of: iss, gs",
            "13:5: fault #3 cut lacks 'for'; expected how long it lasts, such as for: 5m",
            "14:26: fault #4: crash does not take 'for'; expected restart-after",
            "15:5: fault #5 has none of cut, crash, error-burst, power-cut; expected exactly one of cut: LINK, "
            "crash: NODE, error-burst: LINK, power-cut: NODE",
        ],
    ),
    "fault_crash_overlap": (
        HEAD + LINK + "faults:\n  - {at: 1m, crash: iss, restart-after: 5m}\n  - {at: 3m, crash: iss}\n",
        [
            "12:21: fault #2: 'iss' is still down from the crash at 1m (line 11); expected a crash after its restart",
        ],
    ),
    "change_nothing": (
        HEAD + LINK + "    changes: [{at: 40m}, {at: 99m, rate: 1Mbit/s}]\n",
        [
            "10:15: link 'up' change at 40m changes nothing; expected at least one of: delay, jitter, rate, baud, loss, bit-error-rate, queue, queue-units or a direction block a->b: {...}",
            "10:31: link 'up' change at 1h39m is after clock.duration (1h35m); expected a time within the run",
        ],
    ),
    "expect_bad": (
        HEAD
        + LINK
        + "traffic:\n  - {from: iss, to: gs, size: 1KiB, count: 3}\nexpect: {delivered: 4, within-plan: 0.5x, duplicates: -1, intact: maybe}\n",
        [
            "12:21: expect delivered is 4, but the traffic injects 3 bundles; expected a count from 0 to 3",
            "12:37: expect within-plan '0.5x' is not a factor of 1 or more; expected a factor such as 3x, or a slack duration such as 10m",
            "12:55: expect duplicates is -1; expected a whole number >= 0",
            "12:67: expect intact is the text 'maybe'; expected true or false",
        ],
    ),
    "alias": (
        HEAD + LINK + "    delay: &d 10ms\n    jitter: *d\n",
        [
            "11:13: alias *d is not allowed; expected the value written out (aliases are refused so a file cannot expand without bound)",
        ],
    ),
    "syntax": (
        HEAD + "links: {l: [\n",
        [
            "7:1: YAML syntax: did not find expected node content while parsing a flow node",
        ],
    ),
    "tag": (
        HEAD + "seed: !!python/object:os.system x\n",
        [
            "6:7: YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed; expected plain values",
        ],
    ),
    "scalar_root": (
        "just text\n",
        [
            "1:1: the file holds the text 'just text'; expected a scenario mapping that starts with 'hilnet: 1'",
        ],
    ),
    "empty_up": (
        HEAD + LINK + "    up: []\n",
        [
            "10:9: link 'up' up is empty, so the link would never be up; expected windows such as [0m-38m] (omit 'up' for a link that is always up)",
        ],
    ),
    "loss_model": (
        HEAD + LINK + "    loss: 1%\n    loss-model: {gilbert-elliott: {p: 0, r: 2%}}\n",
        [
            "11:39: link 'up' loss-model gilbert-elliott p is 0; expected a probability above 0 (else the state never changes)",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_scenario_reports_every_error_at_its_place(name: str) -> None:
    text, expected = BAD[name]
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "s.yaml")
    assert [str(ScenarioError.__str__(e)) for e in info.value.errors] == [f"s.yaml:{e}" for e in expected]
    # str() of the whole is one line per error, which is what the CLI prints
    assert str(info.value).splitlines() == [f"s.yaml:{e}" for e in expected]


def test_all_errors_of_a_file_come_together_in_file_order() -> None:
    text = HEAD + LINK + "    dealy: 1ms\n    up: [40m-30m]\ntraffic:\n  - {from: iss, to: mars, size: 1KiB}\n"
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "s.yaml")
    assert [(e.line, e.col) for e in info.value.errors] == [(10, 5), (11, 10), (13, 21)]


@pytest.mark.parametrize(
    "eid", ["ipn:1.0", "ipn:10.0", "ipn:01.0", "ipn:1.00", "ipn:\u0661.0", "dtn://iss/", "dtn://no de/", "dtn:none"]
)
def test_node_eids_follow_the_bundle_parser(eid: str) -> None:
    """A node eid is accepted exactly when the bundle codec reads it as a node id."""
    try:
        expected = parse_eid(eid).is_node_id
    except InputError:
        expected = False
    text = f"hilnet: 1\nclock: {{duration: 95m}}\nnodes:\n  iss: {{eid: '{eid}'}}\n"
    try:
        loaded = load_scenario_text(text, "s.yaml").nodes[0].eid == eid
    except ScenarioErrors as e:
        assert "is not a node endpoint id" in str(e)
        loaded = False
    assert loaded == expected


GOOD = (
    HEAD
    + """\
  relay: {eid: "dtn://relay/"}
links:
  iss-relay:
    ends: [iss, relay]
    medium: serial
    baud: 57600
    framing: 8E1
    delay: 120ms
    relay->iss: {baud: 9600, delay: 130ms}
    up: [47m-85m, 0m-38m]
    changes:
      - {at: 50m, bit-error-rate: 1e-6}
      - {at: 60m, iss->relay: {baud: 19200}}
  relay-gs:
    ends: [relay, gs]
    medium: ethernet
    loss-model: {gilbert-elliott: {p: 1%, r: 25%}}
traffic:
  - {name: photos, from: iss, to: gs, start: 2m, every: 10m, count: 9, size: 300KiB}
  - {name: pings, from: gs, to: iss, every: 30m, size: 64}
faults:
  - {at: 50m, crash: relay, restart-after: 30s}
  - {at: 20m, cut: relay-gs, for: 5m}
  - {at: 30m, error-burst: iss-relay, for: 10s}
expect: {delivered: 0.9, within-plan: 2.5x}
"""
)


def test_a_good_scenario_becomes_the_model() -> None:
    s = load_scenario_text(GOOD, "good.yaml")
    assert s.name == "good" and s.version == 1 and s.seed == 0 and s.source == "good.yaml"
    assert s.clock.scale == 60.0 and s.clock.duration_ns == 95 * 60 * 10**9
    assert [parse_eid(n.eid).node_number for n in s.nodes] == [1, 2, None]
    serial = s.link("iss-relay")
    assert (serial.a, serial.b, serial.medium) == ("iss", "relay", "serial")
    assert serial.forward.baud == 57600 and serial.forward.bits_per_byte == 11 and serial.forward.rate_bps is None
    assert serial.backward.baud == 9600 and serial.backward.delay_ns == 130_000_000
    assert serial.forward.delay_ns == 120_000_000
    assert [(w.start_ns // 60e9, w.end_ns // 60e9) for w in serial.windows] == [(0, 38), (47, 85)]  # sorted
    assert [(c.at_ns // 60 // 10**9, c.direction, dict(c.params)) for c in serial.changes] == [
        (50, "both", {"ber": 1e-6}),
        (60, "forward", {"baud": 19200}),
    ]
    eth = s.link("relay-gs")
    assert eth.forward.rate_bps == 100_000_000 and eth.windows == ()
    assert eth.forward.loss_model.p == 0.01 and eth.forward.loss_model.loss_bad == 1.0
    photos, pings = s.traffic
    assert photos.times_ns()[-1] == (2 + 80) * 60 * 10**9 and photos.lifetime_ns == s.clock.duration_ns
    assert pings.count == 4 and pings.start_ns == 0 and pings.size == 64  # 0, 30, 60, 90m
    assert [type(f).__name__ for f in s.faults] == ["Cut", "ErrorBurst", "Crash"]  # sorted by time
    assert s.faults[1].ber == 1e-4
    assert s.expect.delivered == 0.9 and s.expect.within_plan == 2.5 and s.expect.lost == 0


def test_delivered_forms() -> None:
    base = HEAD + LINK + "traffic:\n  - {from: iss, to: gs, size: 1KiB, count: 4}\n"
    assert load_scenario_text(base + "expect: {delivered: all}").expect.delivered == "all"
    assert load_scenario_text(base + "expect: {delivered: 3}").expect.delivered == 3
    assert load_scenario_text(base + "expect: {delivered: 75%}").expect.delivered == 0.75
    assert load_scenario_text(base + "expect: {within-plan: 10m}").expect.within_plan == 600 * 10**9


def test_shipped_scenarios_load() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "scenarios"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert {"iss-tdrs-ground.yaml", "minimal.yaml", "serial-bench.yaml", "every-key.yaml"} <= set(names)
    for name in names:
        load_scenario(root / name)


def test_tls_policy_per_node_then_scenario_then_backend():
    sc = load_scenario_text(
        "hilnet: 1\nclock: {duration: 5m}\ntls: enable\nnodes:\n"
        "  a: {eid: ipn:1.0, tls: require}\n  b: {eid: ipn:2.0, tls: off}\n  c: {eid: ipn:3.0}\n",
        "s.yaml",
    )
    assert [n.tls for n in sc.nodes] == ["require", "off", None]  # `off` stays a word, not YAML's false
    assert [sc.tls_of(n, "require") for n in "abc"] == ["require", "off", "enable"]
    plain = load_scenario_text("hilnet: 1\nclock: {duration: 5m}\nnodes:\n  a: {eid: ipn:1.0}\n", "s.yaml")
    assert plain.tls_of("a", "off") == "off" and plain.tls_of("a", "require") == "require"
