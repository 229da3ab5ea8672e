"""Whatever text comes in, the loader answers with a Scenario or ScenarioErrors, never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilnet.errors import ScenarioError, ScenarioErrors
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan

EVERY_KEY = (Path(__file__).resolve().parents[2] / "scenarios" / "every-key.yaml").read_text()
ALPHABET = st.sampled_from(list("abcdefhilmnoprstuxy0123456789 :-[]{},.%>\n#&*!'\"") + ["\t", "\x00", "é"])


def _check(text: str) -> None:
    try:
        scenario = load_scenario_text(text, "f.yaml")
    except ScenarioErrors as e:
        assert e.errors
        for err in e.errors:
            assert isinstance(err, ScenarioError) and err.file == "f.yaml"
            assert err.line >= 1 and err.col >= 1
            assert "\n" not in err.message
        return
    compile_plan(scenario)  # what loads must also compile


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_scenarios_never_crash(data: st.DataObject) -> None:
    text = EVERY_KEY
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 12))
        insert = data.draw(st.text(ALPHABET, max_size=8))
        text = text[:pos] + insert + text[pos + cut :]
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.text(ALPHABET, max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    if text.strip() and not all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        _check(text)
