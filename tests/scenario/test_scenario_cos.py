"""Classes of service in the scenario language and the plan: ``priority``, ``ordinal``, per-class load."""

from __future__ import annotations

import pytest

from hilnet.errors import ScenarioErrors
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan

BASE = """\
hilnet: 1
name: cos
clock: {{scale: 60, duration: 30m}}
nodes: {{a: {{eid: ipn:1.0}}, b: {{eid: ipn:2.0}}}}
links:
  a-b: {{ends: [a, b], medium: serial, baud: 9600, delay: 10ms}}
traffic:
{traffic}
"""


def _load(traffic: str):
    return load_scenario_text(BASE.format(traffic=traffic), "s.yaml")


def test_ordinal_is_read_and_reaches_the_inject_actions():
    s = _load("  - {name: t, from: a, to: b, size: 400B, priority: expedited, ordinal: 7}")
    (t,) = s.traffic
    assert (t.priority, t.ordinal) == ("expedited", 7)
    (inject,) = [a for a in compile_plan(s).actions if a.kind == "inject"]
    assert (inject.priority, inject.ordinal) == ("expedited", 7)
    assert _load("  - {name: t, from: a, to: b, size: 400B}").traffic[0].ordinal == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: t, from: a, to: b, size: 4B, priority: expedited, ordinal: 255}", "s.yaml:8:71: traffic 't' ordinal is 255; expected a whole number from 0 to 254"),
        ("{name: t, from: a, to: b, size: 4B, priority: bulk, ordinal: 3}", "s.yaml:8:66: traffic 't' ordinal orders expedited traffic only"),
        ("{name: t, from: a, to: b, size: 4B, ordinal: 3}", "s.yaml:8:50: traffic 't' ordinal orders expedited traffic only"),
        ("{name: t, from: a, to: b, size: 4B, priority: expedited, ordinal: -1}", "s.yaml:8:71: traffic 't' ordinal is -1; expected a whole number >= 0"),
        ("{name: t, from: a, to: b, size: 4B, priority: expedited, ordinal: high}", "traffic 't' ordinal is"),
    ],
)  # fmt: skip
def test_bad_ordinals_are_refused_with_file_line_col(entry, message):
    with pytest.raises(ScenarioErrors) as e:
        _load(f"  - {entry}")
    assert message in str(e.value), str(e.value)


def test_plan_shows_capacity_per_class_and_warns_for_the_class_that_cannot_fit():
    # 9600 baud carries ~930 B/s of bundle data: 30 min at scale 60 is 30 s of wall time, ~27.9 KB
    s = _load(
        "  - {name: tweets, from: a, to: b, start: 1m, every: 2m, count: 10, size: 400B, priority: expedited}\n"
        "  - {name: photos, from: a, to: b, start: 2m, count: 2, size: 20KiB, priority: bulk}"
    )
    plan = compile_plan(s)
    (load,) = [lo for lo in plan.loads if lo.frm == "a"]
    exp, bulk = load.by_class
    assert (exp.priority, bulk.priority) == ("expedited", "bulk")
    assert exp.capacity_bytes == load.capacity_bytes and exp.offered_bytes < exp.capacity_bytes
    assert bulk.capacity_bytes == load.capacity_bytes - exp.offered_bytes < bulk.offered_bytes
    (warning,) = [w for w in plan.warnings if "cannot all fit" in w]
    assert "bulk offers" in warning and "expedited offers" not in warning
    text = render_plan(plan)
    assert "load per class of service" in text
    assert any(line.split()[2:3] == ["bulk"] for line in text.splitlines() if line.startswith("a-b "))
    data = plan_to_json(plan)
    assert set(data["loads"][0]["classes"]) == {"expedited", "bulk"}
