"""A link's ``cl``: the convergence layer its ends speak, checked against its medium."""

from __future__ import annotations

import pytest

from hilnet.errors import ScenarioError, TestbedError
from hilnet.scenario.load import load_scenario_text
from hilnet.testbed.base import refuse_unwired_cls

HEAD = """hilnet: 1
name: cl
clock: {scale: 1, duration: 10s}
nodes: {a: {eid: "ipn:1.0"}, b: {eid: "ipn:2.0"}}
links:
"""


def _load(link: str):
    return load_scenario_text(HEAD + "  " + link + "\n", "cl.yaml")


def test_each_medium_has_its_default() -> None:
    sc = load_scenario_text(
        HEAD
        + "  e: {ends: [a, b], medium: ethernet, rate: 1Mbit/s}\n"
        + "  s: {ends: [a, b], medium: serial, baud: 9600}\n",
        "cl.yaml",
    )
    assert [(ln.cl, ln.convergence_layer) for ln in sc.links] == [(None, "tcpcl"), (None, "serial")]


@pytest.mark.parametrize("cl", ["tcpcl", "tcpclv3", "ltp"])
def test_an_ethernet_link_takes_each_ip_cl(cl: str) -> None:
    (link,) = _load(f"ab: {{ends: [a, b], medium: ethernet, cl: {cl}, rate: 1Mbit/s}}").links
    assert link.convergence_layer == cl


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (
            "ab: {ends: [a, b], medium: ethernet, cl: ltpp, rate: 1Mbit/s}",
            "cl.yaml:6:44: link 'ab' cl on ethernet is 'ltpp'; did you mean 'ltp'?; expected tcpcl or tcpclv3 or ltp",
        ),
        (
            "ab: {ends: [a, b], medium: serial, cl: tcpcl, baud: 9600}",
            "cl.yaml:6:42: link 'ab' cl on serial is 'tcpcl'; expected serial",
        ),
    ],
)
def test_a_cl_the_medium_cannot_carry_is_refused_at_its_place(link: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        _load(link)
    assert message in str(err.value)


def test_a_backend_refuses_a_cl_it_cannot_wire_before_building() -> None:
    sc = _load("ab: {ends: [a, b], medium: ethernet, cl: ltp, rate: 1Mbit/s}")
    with pytest.raises(TestbedError, match=r"the netns backend cannot wire link 'ab': cl ltp; it wires serial, tcpcl"):
        refuse_unwired_cls(sc, "netns", frozenset({"tcpcl", "serial"}))
    refuse_unwired_cls(sc, "netns", frozenset({"tcpcl", "ltp"}))  # wired: nothing said
