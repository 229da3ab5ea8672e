"""ION contact plans: export, import, and the round trip between them."""

from __future__ import annotations

import pytest

from hilnet.errors import ContactPlanError
from hilnet.scenario.ion import export_ion, import_ion, parse_ionrc, raw_rate_for_goodput
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
    links = import_ion(first, source="first.ionrc")
    again = load_scenario_text("hilnet: 1\nclock: {duration: 1h}\n" + links)
    second = export_ion(again, compile_plan(again))
    assert _lines(second) == _lines(first)
    link = again.link("node-1-node-2")
    assert [(w.start_ns, w.end_ns) for w in link.windows] == [(0, 1200 * 10**9), (1800 * 10**9, 3000 * 10**9)]
    assert link.forward.delay_ns == 10**9 and link.backward.delay_ns == 2 * 10**9


def test_import_scales_times_and_writes_changes() -> None:
    ionrc = """\
# a comment, and other ionrc commands that are not contacts
1 1 ''
s
a contact +0 +60 1 2 1000
a contact +0 +60 2 1 1000
a contact +60 +120 1 2 500 1.0
a contact +60 +120 2 1 500
a range +0 +120 1 2 3
"""
    text = import_ion(ionrc, scale=60, source="x.ionrc")
    assert text.splitlines()[1:] == [
        "nodes:",
        "  node-1: {eid: ipn:1.0}",
        "  node-2: {eid: ipn:2.0}",
        "links:",
        "  node-1-node-2:",
        "    ends: [node-1, node-2]",
        "    medium: ethernet  # ION rates are bundle bytes/s; raw rate chosen to give them back",
        f"    rate: {raw_rate_for_goodput(1000)}bit/s",
        "    delay: 3s",
        "    up: [0s-2h]",
        "    changes:",
        f"      - {{at: 1h, rate: {raw_rate_for_goodput(500)}bit/s}}",
        "# the last contact ends at 2h: clock.duration must be at least that",
    ]
    s = load_scenario_text("hilnet: 1\nclock: {scale: 60, duration: 2h}\n" + text)
    assert [c.rate for c in compile_plan(s).wall_contacts] == [1000, 1000, 500, 500]


@pytest.mark.parametrize("goodput", [1, 7, 1000, 11234, 1_176_853, 123_456_789])
def test_raw_rate_is_the_smallest_that_gives_the_goodput_back(goodput: int) -> None:
    raw = raw_rate_for_goodput(goodput)
    eff = efficiency("ethernet")
    assert int(raw / 8 * eff) >= goodput
    assert raw == 1 or int((raw - 1) / 8 * eff) < goodput


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a contact +0 +60 1 2\n",
            "x:1: 'a contact' has 4 arguments; expected a contact +START +END FROM TO RATE [CONFIDENCE]",
        ),
        (
            "\na contact 2024/01/01-00:00:00 +60 1 2 100\n",
            "x:2: start time '2024/01/01-00:00:00' is not relative; "
            "expected +SECONDS (absolute yyyy/mm/dd-hh:mm:ss times are not supported)",
        ),
        ("a contact +60 +0 1 2 100\n", "x:1: ends at +0 before it starts at +60; expected START < END"),
        ("a range +0 +60 1 one 1\n", "x:1: cannot read '1 one 1'; expected node numbers and an OWLT in seconds"),
        ("a contact +0 +60 1 1 100\n", "x:1: nodes 1 and 1; expected two different node numbers above 0"),
        ("a contact +0 +60 1 2 0\n", "x:1: contact value 0; expected a number above 0"),
    ],
)
def test_bad_lines_name_their_line(text: str, message: str) -> None:
    with pytest.raises(ContactPlanError) as info:
        parse_ionrc(text, "x")
    assert str(info.value) == message


def test_windows_must_match_both_ways() -> None:
    with pytest.raises(ContactPlanError) as info:
        import_ion("a contact +0 +60 1 2 100\na contact +0 +30 2 1 100\n", source="x")
    assert str(info.value) == (
        "x:1: contacts 1->2 and 2->1 have different windows; expected the same windows both "
        "ways (a hilnet link is up or down as a whole)"
    )


def test_no_contacts() -> None:
    with pytest.raises(ContactPlanError, match="no 'a contact' lines"):
        import_ion("a range +0 +1 1 2 1\n", source="x")
