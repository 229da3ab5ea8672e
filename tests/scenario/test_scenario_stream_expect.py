"""A traffic stream's own ``expect`` (within, within-plan): read into the model, bad input at FILE:LINE:COL."""

from __future__ import annotations

import pytest

from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.model import StreamExpect

HEAD = (
    "hilnet: 1\nclock: {scale: 60, duration: 95m}\nnodes:\n  iss: {eid: ipn:1.0}\n  gs: {eid: ipn:2.0}\n"
    "links:\n  up: {ends: [iss, gs], medium: ethernet}\ntraffic:\n"
)


def _errors(text: str) -> list[str]:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario_text(text, "s.yaml")
    return [str(ScenarioError.__str__(e)) for e in info.value.errors]


def test_a_stream_states_its_own_bounds() -> None:
    sc = load_scenario_text(
        HEAD
        + "  - {name: tweets, from: iss, to: gs, size: 400B, expect: {within-plan: 10s, within: 2m}}\n"
        + "  - {name: photos, from: iss, to: gs, size: 1KiB, expect: {within-plan: 3x}}\n"
        + "  - {name: plain, from: iss, to: gs, size: 1KiB}\n"
    )
    assert [t.expect for t in sc.traffic] == [
        StreamExpect(within_ns=120 * 10**9, within_plan=10 * 10**9),
        StreamExpect(within_ns=None, within_plan=3.0),
        None,
    ]
    assert sc.expect.within_plan is None  # the run-wide expect is untouched


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "  - {name: t, from: iss, to: gs, size: 1B, expect: {within-plan: 0.5x}}\n",
            "s.yaml:9:66: traffic 't' expect within-plan '0.5x' is not a factor of 1 or more; "
            "expected a factor such as 3x, or a slack duration such as 10m",
        ),
        (
            "  - {name: t, from: iss, to: gs, size: 1B, expect: {within: soon}}\n",
            "s.yaml:9:61: traffic 't' expect within: cannot read duration 'soon'",
        ),
        (
            "  - {name: t, from: iss, to: gs, size: 1B, expect: {delivered: all}}\n",
            "s.yaml:9:53: unknown key 'delivered' in traffic 't' expect; expected one of: within, within-plan",
        ),
        (
            "  - {name: t, from: iss, to: gs, size: 1B, expect: {}}\n",
            "s.yaml:9:52: traffic 't' expect is empty; expected within and/or within-plan, such as {within-plan: 10s}",
        ),
        (
            "  - {name: t, from: iss, to: gs, size: 1B, expect: 10s}\n",
            "s.yaml:9:52: traffic 't' expect is the text '10s'; expected a mapping of within, within-plan",
        ),
    ],
)
def test_bad_stream_expect_is_reported_at_its_place(entry: str, expected: str) -> None:
    errors = _errors(HEAD + entry)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors[0]
