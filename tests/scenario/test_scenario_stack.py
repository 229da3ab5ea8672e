"""A node's ``stack``: which DTN software plays it, and the links that software can take."""

from __future__ import annotations

import pytest

from hilnet.errors import ScenarioError
from hilnet.scenario.load import load_scenario_text


def _load(nodes: str, links: str = "  ab: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 1Mbit/s}"):
    text = f"hilnet: 1\nname: st\nclock: {{scale: 1, duration: 10s}}\nnodes:\n{nodes}\nlinks:\n{links}\n"
    return load_scenario_text(text, "st.yaml")


def test_a_node_runs_hilnet_unless_it_says_otherwise() -> None:
    sc = _load('  a: {eid: "ipn:1.0"}\n  b: {eid: "ipn:2.0", stack: ion}')
    assert [(n.name, n.stack) for n in sc.nodes] == [("a", "hilnet"), ("b", "ion")]


def test_an_unknown_stack_is_refused_at_its_place_with_a_suggestion() -> None:
    with pytest.raises(ScenarioError) as err:
        _load('  a: {eid: "ipn:1.0", stack: ionn}\n  b: {eid: "ipn:2.0"}')
    assert "st.yaml:5:30: node 'a' stack is 'ionn'; did you mean 'ion'?; expected hilnet or ion" in str(err.value)


def test_ion_on_a_serial_link_is_refused_at_the_link() -> None:
    with pytest.raises(ScenarioError) as err:
        _load(
            '  a: {eid: "ipn:1.0", stack: ion}\n  b: {eid: "ipn:2.0"}',
            "  ab: {ends: [a, b], medium: serial, baud: 9600}",
        )
    message = str(err.value)
    assert "st.yaml:8:30: link 'ab': node 'a' runs stack ion (line 5), which does not speak serial" in message
    assert "expected an ethernet link with cl: tcpclv3 or ltp (ion has no serial convergence layer)" in message


def test_ion_on_the_default_tcpcl_says_which_cls_it_speaks() -> None:
    with pytest.raises(ScenarioError) as err:
        _load(
            '  a: {eid: "ipn:1.0"}\n  b: {eid: "ipn:2.0", stack: ion}',
            "  ab: {ends: [a, b], medium: ethernet, rate: 1Mbit/s}",
        )
    assert "node 'b' runs stack ion (line 6), which does not speak tcpcl (the default on ethernet); " in str(err.value)
    assert "expected cl: tcpclv3 or ltp on this link" in str(err.value)


@pytest.mark.parametrize("cl", ["tcpclv3", "ltp"])
def test_ion_and_hilnet_share_a_link_over_a_cl_both_speak(cl: str) -> None:
    sc = _load(
        '  a: {eid: "ipn:1.0", stack: ion}\n  b: {eid: "ipn:2.0", stack: hilnet}',
        f"  ab: {{ends: [a, b], medium: ethernet, cl: {cl}, rate: 1Mbit/s}}",
    )
    assert sc.links[0].convergence_layer == cl


def test_tls_or_keys_on_an_ion_node_are_refused_at_the_key() -> None:
    with pytest.raises(ScenarioError) as err:
        _load('  a: {eid: "ipn:1.0", stack: ion, tls: require}\n  b: {eid: "ipn:2.0"}')
    assert "st.yaml:5:40: node 'a' tls: stack ion does not take it" in str(err.value)


def test_bpsec_traffic_to_or_from_an_ion_node_is_refused_at_its_security() -> None:
    traffic = "traffic:\n  - {name: t, from: a, to: b, size: 1KiB, security: {integrity: hmac-sha384}}\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario_text(
            "hilnet: 1\nname: st\nclock: {scale: 1, duration: 10s}\nnodes:\n"
            '  a: {eid: "ipn:1.0"}\n  b: {eid: "ipn:2.0", stack: ion}\nlinks:\n'
            "  ab: {ends: [a, b], medium: ethernet, cl: tcpclv3, rate: 1Mbit/s}\n" + traffic,
            "st.yaml",
        )
    message = str(err.value)
    assert "st.yaml:10:53: traffic 't' security: node 'b' runs stack ion, which hilnet does not give BPSec" in message
