"""An ION node's rc files from its view of the plan (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from hilnet.scenario.ion import export_ion
from hilnet.scenario.ionrc import parse_ionrc
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.stacks.ion import rcfiles
from hilnet.stacks.ion.rcfiles import IonNeighbour, IonNode

RELAY = IonNode(
    "tdrs",
    "ipn:2.1",
    "/runs/r1/stacks/tdrs",
    (IonNeighbour("iss", 1, "tcp", "10.77.0.1"), IonNeighbour("wsc", 4, "ltp", "10.77.1.2")),
)

SCENARIO = """
hilnet: 1
name: three
clock: {scale: 60, duration: 30m}
nodes:
  iss:  {eid: ipn:1.0}
  tdrs: {eid: ipn:2.0}
  wsc:  {eid: ipn:4.0}
links:
  up:   {ends: [iss, tdrs], medium: ethernet, rate: 1Mbit/s, delay: 125ms, up: [1m-10m, 20m-30m]}
  down: {ends: [tdrs, wsc], medium: ethernet, rate: 1Mbit/s, delay: 1250ms}
"""


def test_endpoints_application_and_sender_next_to_ions_own():
    assert rcfiles.app_eid("ipn:7.0") == "ipn:7.1"
    assert rcfiles.send_eid("ipn:7.1") == "ipn:7.2"


def test_ionconfig_keeps_the_sdr_in_a_file_in_the_nodes_folder():
    cfg = dict(line.split(" ", 1) for line in rcfiles.ionconfig(RELAY).splitlines() if not line.startswith("#"))
    assert cfg["pathName"] == "/runs/r1/stacks/tdrs"
    assert int(cfg["configFlags"]) & 2  # SDR_IN_FILE: it survives kill -9
    assert int(cfg["configFlags"]) & 4  # SDR_REVERSIBLE: a transaction cut by the kill is rolled back
    assert "sdrName" not in cfg and "wmKey" not in cfg  # ION's defaults: one ION per IPC namespace
    assert rcfiles.node_ionrc(RELAY, "/runs/r1/stacks/tdrs/ion.cfg") == "1 2 '/runs/r1/stacks/tdrs/ion.cfg'\ns\n"


def test_bprc_watches_listens_and_plans_each_neighbour_on_its_cl():
    lines = rcfiles.bprc(RELAY).splitlines()
    assert lines[:5] == [
        "1",
        "w 1",
        "a scheme ipn 'ipnfw' 'ipnadminep'",
        "a endpoint ipn:2.1 q",
        "a endpoint ipn:2.2 x",
    ]
    for want in (
        "a protocol tcp",
        "a protocol ltp",
        "a induct tcp 0.0.0.0:4557 tcpcli",
        "a induct ltp 2 ltpcli",
        "a outduct tcp 10.77.0.1:4557 tcpclo",
        "a plan ipn:1.0",
        "a planduct ipn:1.0 tcp 10.77.0.1:4557",
        "a outduct ltp 4 ltpclo",
        "a planduct ipn:4.0 ltp 4",
    ):
        assert want in lines, want
    assert lines[-1] == "s"


def test_ltprc_has_a_span_per_ltp_neighbour_only():
    assert rcfiles.ltprc(RELAY).splitlines() == [
        "1 8",
        "a span 4 8 8 1400 65536 1 'udplso 10.77.1.2:1113'",
        "s 'udplsi 0.0.0.0:1113'",
    ]
    tcp_only = IonNode("iss", "ipn:1.1", "/x", (IonNeighbour("tdrs", 2, "tcp", "10.77.0.2"),))
    assert rcfiles.ltprc(tcp_only) is None


def test_contacts_are_the_exported_plan_against_the_runs_start_in_utc():
    scenario = load_scenario_text(SCENARIO)
    plan = compile_plan(scenario)
    export = export_ion(scenario, plan)
    t0 = int(datetime(2026, 11, 29, 10, 30, 5, tzinfo=UTC).timestamp() * 1e9) + 250_000_000
    text = rcfiles.contacts_ionrc(export, t0)
    assert text.splitlines()[0] == "@ 2026/11/29-10:30:06"  # rounded up to ION's whole seconds
    assert text.endswith(export)
    # ION reads it back as the same windows from that reference (hilnet's own ionrc reader says so)
    rc = parse_ionrc(text)
    t0_s = int(datetime(2026, 11, 29, 10, 30, 6, tzinfo=UTC).timestamp())
    up = sorted(
        (x.start.seconds - t0_s, x.end.seconds - t0_s) for x in rc.lines if (x.kind, x.frm, x.to) == ("contact", 1, 2)
    )
    assert up == [(1, 10), (20, 30)]  # 1m-10m and 20m-30m at scale 60, in wall seconds
    ranges = {(x.frm, x.to): x.value for x in rc.lines if x.kind == "range"}
    assert ranges[(2, 4)] == 2  # 1250 ms one way, rounded up to whole seconds
