"""ION contact plans: export, import, and the round trip between them."""

from __future__ import annotations

import pytest

from hilnet.errors import ContactPlanError
from hilnet.scenario.ion import export_ion, raw_rate_for_goodput
from hilnet.scenario.ion_import import import_ion
from hilnet.scenario.ionrc import parse_ionrc
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.overhead import efficiency
from hilnet.scenario.plan import compile_plan

SCENARIO = """\
hilnet: 1
name: ion
clock: {scale: 1, duration: 1h}
nodes:
  iss: {eid: ipn:1.0}
  tdrs: {eid: ipn:2.0}
  gs: {eid: ipn:3.0}
  lab: {eid: "dtn://lab/"}
links:
  iss-tdrs:
    ends: [iss, tdrs]
    medium: serial
    baud: 115200
    delay: 1s
    tdrs->iss: {baud: 57600, delay: 2s}
    up: [0m-20m, 30m-50m]
  tdrs-gs:
    ends: [tdrs, gs]
    medium: ethernet
    rate: 10Mbit/s
    changes: [{at: 40m, rate: 2Mbit/s}]
  gs-lab: {ends: [gs, lab], medium: ethernet}
"""


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_export_writes_contact_and_range_lines() -> None:
    s = load_scenario_text(SCENARIO)
    text = export_ion(s, compile_plan(s))
    serial = int(11520 * 1024 / 1057)
    slow = int(5760 * 1024 / 1057)
    eth10 = int(1_250_000 * 1448 / 1538)
    eth2 = int(250_000 * 1448 / 1538)
    assert _lines(text) == [
        f"a contact +0 +1200 1 2 {serial}",
        "a range +0 +1200 1 2 1",
        f"a contact +0 +1200 2 1 {slow}",
        "a range +0 +1200 2 1 2",
        f"a contact +1800 +3000 1 2 {serial}",
        "a range +1800 +3000 1 2 1",
        f"a contact +1800 +3000 2 1 {slow}",
        "a range +1800 +3000 2 1 2",
        f"a contact +0 +2400 2 3 {eth10}",
        "a range +0 +2400 2 3 0",
        f"a contact +0 +2400 3 2 {eth10}",
        "a range +0 +2400 3 2 0",
        f"a contact +2400 +3600 2 3 {eth2}",
        "a range +2400 +3600 2 3 0",
        f"a contact +2400 +3600 3 2 {eth2}",
        "a range +2400 +3600 3 2 0",
    ]
    assert (
        "# skipped link gs-lab: node lab has a dtn:// eid, and ION contact plans name nodes by ipn node number"
        in text.splitlines()
    )


def test_export_uses_wall_time_and_narrows_to_whole_seconds() -> None:
    s = load_scenario_text(SCENARIO.replace("scale: 1,", "scale: 7,"))
    lines = _lines(export_ion(s, compile_plan(s)))
    # 20 scenario minutes / 7 = 171.43 wall seconds, narrowed to +0 +171; 30m/7 = 257.14 -> +258
    assert lines[0].startswith("a contact +0 +171 1 2 ")
    assert lines[4].startswith("a contact +258 +428 1 2 ")


def test_round_trip_gives_back_the_same_contact_plan() -> None:
    s = load_scenario_text(SCENARIO)
    first = export_ion(s, compile_plan(s))
    again = load_scenario_text(import_ion(first, source="first.ionrc").text)
    second = export_ion(again, compile_plan(again))
    assert _lines(second) == _lines(first)
    link = again.link("node-1-node-2")
    assert [(w.start_ns, w.end_ns) for w in link.windows] == [(0, 1200 * 10**9), (1800 * 10**9, 3000 * 10**9)]
    assert link.forward.delay_ns == 10**9 and link.backward.delay_ns == 2 * 10**9


def test_import_writes_a_whole_scenario_with_scaled_times_and_changes() -> None:
    ionrc = """\
# a comment, and other ionrc commands that are not contacts
1 1 ''
s
m horizon +0
a contact +0 +60 1 2 1000
a contact +0 +60 2 1 1000
a contact +60 +120 1 2 500 1.0
a contact +60 +120 2 1 500
a range +0 +120 1 2 3
"""
    imported = import_ion(ionrc, scale=60, source="dir/x.ionrc")
    assert imported.text.splitlines()[1:] == [
        "hilnet: 1",
        'name: "x"',
        'description: "Contact plan imported from ION (x.ionrc)"',
        "clock: {scale: 60, duration: 2h}",
        "nodes:",
        "  node-1: {eid: ipn:1.0}",
        "  node-2: {eid: ipn:2.0}",
        "links:",
        "  node-1-node-2:",
        "    ends: [node-1, node-2]",
        "    medium: ethernet  # ION rates are bundle bytes/s; the raw rate is chosen to give them back",
        f"    rate: {raw_rate_for_goodput(1000)}bit/s",
        "    delay: 3s",
        "    up: [0s-2h]",
        "    changes:",
        f"      - {{at: 1h, rate: {raw_rate_for_goodput(500)}bit/s}}",
    ]
    assert imported.notes == (
        "dir/x.ionrc: skipped '1: initialises the node, nothing to import' (line 2)",
        "dir/x.ionrc: skipped 's: starts ION, nothing to import' (line 3)",
        "dir/x.ionrc: skipped 'm horizon: sets a management parameter, nothing to import' (line 4)",
    )
    s = load_scenario_text(imported.text)
    assert [c.rate for c in compile_plan(s).wall_contacts] == [1000, 1000, 500, 500]


def test_self_contacts_are_skipped_with_a_note_each() -> None:
    imported = import_ion(
        "a contact +1 +3600 1 1 100000\na contact +1 +3600 1 2 100000\na contact +1 +3600 2 1 100000\n"
        "a range +1 +3600 1 1 1\na range +1 +3600 1 2 1\n",
        source="h.rc",
    )
    assert imported.notes == (
        "h.rc:1: contact 1->1 is node 1's contact with itself; skipped (hilnet nodes reach themselves without a link)",
        "h.rc:4: range 1->1 is node 1's range with itself; skipped (hilnet nodes reach themselves without a link)",
    )
    s = load_scenario_text(imported.text)
    assert [link.name for link in s.links] == ["node-1-node-2"]


def test_asymmetric_and_one_way_contacts_become_per_direction_windows() -> None:
    ionrc = """\
a contact +0 +60 2 3 1000
a contact +0 +30 3 2 100
a contact +100 +200 2 3 1000
a contact +0 +50 4 5 800
a range +0 +200 2 3 1
"""
    s = load_scenario_text(import_ion(ionrc, source="x").text)
    asym = s.link("node-2-node-3")
    assert [(w.start_ns // 10**9, w.end_ns // 10**9) for w in asym.windows_of("forward")] == [(0, 60), (100, 200)]
    assert [(w.start_ns // 10**9, w.end_ns // 10**9) for w in asym.windows_of("backward")] == [(0, 30)]
    one_way = s.link("node-4-node-5")
    assert one_way.windows_of("backward") == () and one_way.windows_of("forward") is not None
    contacts = [(c.frm, c.to, c.start_ns // 10**9, c.end_ns // 10**9, c.rate) for c in compile_plan(s).wall_contacts]
    assert contacts == [
        ("node-2", "node-3", 0, 60, 1000),
        ("node-3", "node-2", 0, 30, 100),
        ("node-2", "node-3", 100, 200, 1000),
        ("node-4", "node-5", 0, 50, 800),
    ]


def test_absolute_times_are_read_against_the_epoch_or_the_earliest_time() -> None:
    ionrc = """\
a contact 2024/03/01-12:00:00 2024/03/01-12:10:00 1 2 1000
a contact 2024/03/01-12:00:00 2024/03/01-12:10:00 2 1 1000
a contact 2024/03/01-12:20:00 2024/03/01-12:30:00 1 2 1000
"""
    imported = import_ion(ionrc, source="abs")
    assert imported.text.splitlines()[1] == (
        "# scenario time 0 is 2024-03-01T12:00:00Z, the earliest time in the file (no epoch was given); "
        "relative +SECONDS count from it too"
    )
    s = load_scenario_text(imported.text)
    assert s.clock.epoch == "2024-03-01T12:00:00Z"
    assert [(w.start_ns // 60e9, w.end_ns // 60e9) for w in s.link("node-1-node-2").windows_of("forward")] == [
        (0, 10),
        (20, 30),
    ]
    earlier = load_scenario_text(import_ion(ionrc, source="abs", epoch="2024-03-01T11:00:00Z").text)
    assert earlier.clock.epoch == "2024-03-01T11:00:00Z"
    assert earlier.link("node-1-node-2").windows_of("forward")[0].start_ns == 3600 * 10**9


def test_reference_time_and_mixed_times() -> None:
    ionrc = """\
@ 2024/03/01-00:00:00
a contact +60 +120 1 2 1000
@ 0
a contact +0 2024/03/01-00:10:00 2 1 1000
"""
    imported = import_ion(ionrc, source="r")
    # earliest absolute: 00:01:00 (line 2, reference + 60); +0 on line 4 is ION's start = scenario 0
    s = load_scenario_text(imported.text)
    assert [(c.frm, c.to, c.start_ns // 10**9, c.end_ns // 10**9) for c in compile_plan(s).wall_contacts] == [
        ("node-1", "node-2", 0, 60),
        ("node-2", "node-1", 0, 540),
    ]


def test_a_contact_left_empty_by_its_epoch_is_skipped_with_a_note() -> None:
    ionrc = "1 5 ionconfig\na contact +0 2009/01/01-00:00:00 5 7 10000\na range +0 2009/01/01-00:00:00 5 7 600\n"
    imported = import_ion(ionrc, source="n5")
    assert (
        "n5:2: contact 5->7 +0..2009/01/01-00:00:00 is empty once placed (0..0 s); skipped "
        "(give an epoch before 2009/01/01-00:00:00 to place it)" in imported.notes
    )
    assert "node-5: {eid: ipn:5.0}" in imported.text
    load_scenario_text(imported.text)
    placed = load_scenario_text(import_ion(ionrc, source="n5", epoch="2008-12-31T23:00:00Z").text)
    link = placed.link("node-5-node-7")
    assert link.forward.delay_ns == 600 * 10**9 and link.windows_of("backward") == ()
    assert placed.clock.duration_ns == 3600 * 10**9


def test_unmatched_ranges_and_contacts_without_range_are_reported() -> None:
    imported = import_ion("a contact +0 +60 1 2 100\na range +0 +60 1 3 2\n", source="u")
    assert imported.notes == (
        "u:1: contact 1->2 has no range; delay 0 used",
        "u:2: range 1->3 +0..+60 s matches no contact; ignored",
    )


def test_ionscript_sections_of_other_admins_are_skipped() -> None:
    ionrc = """\
## begin ionadmin
1 1 ''
a contact +1 +3600 1 2 100000
## end ionadmin

## begin bpadmin
1
a scheme ipn 'ipnfw' 'ipnadminep'
a contact this would be refused if it were read
## end bpadmin
"""
    imported = import_ion(ionrc, source="h.rc")
    assert "h.rc:6: the bpadmin section (lines 6-10) is not ionadmin's; skipped" in imported.notes


def test_delete_and_change_commands_act_on_earlier_lines() -> None:
    ionrc = """\
a contact +0 +60 1 2 1000
a contact +100 +160 1 2 1000
d contact +100 1 2
c contact +0 1 2 2000
"""
    s = load_scenario_text(import_ion(ionrc, source="d").text)
    assert [(c.start_ns // 10**9, c.rate) for c in compile_plan(s).wall_contacts] == [(0, 2000)]


@pytest.mark.parametrize("goodput", [1, 7, 1000, 11234, 1_176_853, 123_456_789])
def test_raw_rate_is_the_smallest_that_gives_the_goodput_back(goodput: int) -> None:
    raw = raw_rate_for_goodput(goodput)
    eff = efficiency("ethernet")
    assert int(raw / 8 * eff) >= goodput
    assert raw == 1 or int((raw - 1) / 8 * eff) < goodput


# Malformed contact lines: each is refused whole, with FILE:LINE: what, and what was expected.
BAD_LINES = [
    (
        "a contact +0 +60 1 2\n",
        "x:1: 'a contact' has 4 arguments; expected a contact START END FROM TO RATE [CONFIDENCE]",
    ),
    ("a range +0 +60 1 2 1 1\n", "x:1: 'a range' has 6 arguments; expected a range START END FROM TO OWLT"),
    (
        "\na contact 2024-01-01 +60 1 2 100\n",
        "x:2: start time '2024-01-01' is not a time; expected +SECONDS or yyyy/mm/dd-hh:mm:ss (UTC)",
    ),
    (
        "a contact 2024/02/30-00:00:00 2024/03/01-00:00:00 1 2 100\n",
        "x:1: start time '2024/02/30-00:00:00': day is out of range for month",
    ),
    ("a contact +60 +0 1 2 100\n", "x:1: ends at +0 before it starts at +60; expected START < END"),
    (
        "a contact 2024/01/01-00:00:10 2024/01/01-00:00:00 1 2 100\n",
        "x:1: ends at 2024/01/01-00:00:00 before it starts at 2024/01/01-00:00:10; expected START < END",
    ),
    ("a range +0 +60 1 one 1\n", "x:1: cannot read nodes '1 one'; expected node numbers such as 1 2"),
    ("a contact +0 +60 0 2 100\n", "x:1: nodes 0 and 2; expected node numbers from 1 to 2^64-1"),
    ("a contact +0 +60 1 2 0\n", "x:1: contact value 0; expected a number above 0"),
    ("a contact +0 +3600 2 3 ${THROUGHPUT}\n", "x:1: cannot read '${THROUGHPUT}'; expected a rate in bytes/s"),
    ("a contact +0 +60 1 2 100 1.5\n", "x:1: confidence 1.5; expected a number from 0 to 1"),
    ("a range +0 +60 1 2 nan\n", "x:1: 'nan' is not finite; expected an OWLT in seconds"),
    ("@\n", "x:1: '@' needs one time; expected @ yyyy/mm/dd-hh:mm:ss or @ 0"),
    ("d contact +0 1\n", "x:1: 'd contact' has 2 arguments; expected d contact START FROM TO"),
    ("c contact +0 1 2 50\n", "x:1: changes contact 1->2 from +0, which no line added"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LINES)
def test_malformed_contact_lines_name_their_line(text: str, message: str) -> None:
    with pytest.raises(ContactPlanError) as info:
        parse_ionrc(text, "x")
    assert str(info.value) == message


def test_overlapping_contacts_one_way_are_refused() -> None:
    with pytest.raises(ContactPlanError) as info:
        import_ion("a contact +0 +60 1 2 100\na contact +30 +90 1 2 100\n", source="x")
    assert str(info.value) == "x:2: contact 1->2 overlaps the one on line 1; expected contacts one after another"


def test_no_contacts() -> None:
    with pytest.raises(ContactPlanError, match="no 'a contact' lines"):
        import_ion("s\nm horizon +0\n", source="x")


def test_the_epoch_travels_with_the_plan() -> None:
    s = load_scenario_text(
        SCENARIO.replace("clock: {scale: 1, duration: 1h}", 'clock: {duration: 1h, epoch: "2030-05-01T00:00:00Z"}')
    )
    exported = export_ion(s, compile_plan(s))
    assert "# +0 is the scenario's clock.epoch 2030-05-01T00:00:00Z (UTC)" in exported.splitlines()
    back = load_scenario_text(import_ion(exported, source="e", epoch=s.clock.epoch).text)
    assert back.clock.epoch_unix_ns == s.clock.epoch_unix_ns
