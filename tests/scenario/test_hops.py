"""Hop limits from the plan: the default covers the longest path, validate refuses one too short."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hilnet.agent.protocol import Inject, encode_command, parse_command
from hilnet.cli import cli
from hilnet.errors import ControlError, ScenarioErrors
from hilnet.scenario.actions import InjectBundle
from hilnet.scenario.generate import Shape, chain, grid
from hilnet.scenario.hops import default_hop_limit, link_graph, longest_hops, shortest_hops
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan


def injects(text: str) -> list[InjectBundle]:
    return [a for a in compile_plan(load_scenario_text(text)).actions if isinstance(a, InjectBundle)]


def test_paths_in_hops_on_a_chain_and_a_grid():
    c = link_graph(load_scenario_text(chain(10)).links)
    assert shortest_hops(c, "n0", "n9") == longest_hops(c, "n0", "n9") == 9
    g = link_graph(load_scenario_text(grid(4, 5)).links)
    assert shortest_hops(g, "n0-0", "n3-4") == 7
    assert longest_hops(g, "n0-0", "n3-4") == 19  # no loop-free path visits more than all 20 nodes
    assert shortest_hops(g, "n0-0", "nowhere") is None


def test_default_covers_the_longest_path_with_a_margin_and_never_passes_255():
    assert {a.hop_limit for a in injects(chain(100))} == {99 + 24}
    assert {a.hop_limit for a in injects(chain(3))} == {2 + 2}
    assert {a.hop_limit for a in injects(grid(32, 32))} == {255}
    g = link_graph(load_scenario_text(grid(32, 32)).links)
    assert default_hop_limit(g, "n0-0", "n31-31") == 255 >= shortest_hops(g, "n0-0", "n31-31")


def test_the_traffic_key_sets_it():
    assert {a.hop_limit for a in injects(chain(5, Shape(hop_limit=200)))} == {200}


def test_validate_refuses_a_hop_limit_below_the_shortest_path_at_its_line_and_column():
    text = chain(100, Shape(hop_limit=32))
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(text, "chain.yaml")
    (err,) = e.value.errors
    line = text.splitlines()[err.line - 1]
    assert line[err.col - 1 :].startswith("32}"), line
    assert "shortest path from 'n0' to 'n99' takes 99 hops, but its hop-limit is 32" in str(err)
    assert "expected a hop-limit of at least 99" in str(err)


def test_validate_cli_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(chain(100, Shape(hop_limit=32)))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 2
    line_no = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "hop-limit" in s)
    assert f"{path}:{line_no}:" in r.output and "hop-limit is 32" in r.output


@pytest.mark.parametrize("value", ["0", "256", "many", "1.5"])
def test_a_hop_limit_outside_1_to_255_is_refused(value):
    text = chain(3).replace("size: 1KiB", f"size: 1KiB, hop-limit: {value}")
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(text, "x.yaml")
    assert "hop-limit" in str(e.value)


def test_ends_more_than_255_hops_apart_are_refused_at_the_traffic_entry():
    text = chain(300)
    with pytest.raises(ScenarioErrors) as e:
        load_scenario_text(text, "x.yaml")
    (err,) = e.value.errors
    assert text.splitlines()[err.line - 1].lstrip().startswith("- {name: data")
    assert "takes 299 hops, more than any bundle may take" in str(err)


def test_inject_carries_the_hop_limit_over_the_control_channel():
    cmd = Inject(dest="ipn:2.0", size=10, hop_limit=123)
    assert parse_command(encode_command(cmd)) == cmd
    assert parse_command(encode_command(Inject(dest="ipn:2.0", size=10))).hop_limit is None
    for bad in (0, 256):
        with pytest.raises(ControlError, match="hop_limit"):
            parse_command(f'{{"cmd":"inject","dest":"ipn:2.0","size":1,"hop_limit":{bad}}}')
