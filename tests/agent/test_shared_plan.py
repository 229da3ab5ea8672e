"""One plan for many hosted agents: spliced lines are the lines the protocol would write, parsed once."""

from __future__ import annotations

import pytest

from hilnet.agent.host import parse_listen_fd
from hilnet.agent.protocol import Configure, StoreConfig, encode_command, parse_command
from hilnet.agent.shared_plan import PlanCache, PlanSplicer
from hilnet.errors import InputError
from hilnet.scenario.contact import Contact

PLAN = tuple(Contact(f"n{i}", f"n{i + 1}", i * 10**9, (i + 3) * 10**9, 125_000, 5_000_000) for i in range(50))


def configure(node: str, contacts=PLAN) -> Configure:
    return Configure(node=node, eid="ipn:1.0", store=StoreConfig(f"/tmp/{node}.store"), contacts=contacts, hold=True)


def test_spliced_lines_are_the_lines_the_protocol_writes() -> None:
    splicer = PlanSplicer(encode_command)
    for node in ("a", "b", "c"):
        assert splicer.encode(configure(node)) == encode_command(configure(node))
    other = tuple(reversed(PLAN))  # another plan object: encoded whole, and remembered instead
    assert splicer.encode(configure("d", other)) == encode_command(configure("d", other))


def test_a_host_parses_a_plan_once_and_shares_it() -> None:
    cache = PlanCache()
    parsed: list[int] = []

    def parse(line: bytes):
        parsed.append(len(line))
        return parse_command(line)

    first = cache.parse(encode_command(configure("a")), parse)
    second = cache.parse(encode_command(configure("b")), parse)
    assert isinstance(first, Configure) and isinstance(second, Configure)
    assert second.node == "b" and second.contacts is first.contacts  # one tuple for both agents
    assert second == parse_command(encode_command(configure("b")))  # and the command the line says
    assert parsed[1] < parsed[0] / 5  # the second line was parsed without its plan
    changed = cache.parse(encode_command(configure("c", PLAN[:10])), parse)
    assert isinstance(changed, Configure) and len(changed.contacts) == 10


def test_listen_fd_needs_fd_host_and_port() -> None:
    assert parse_listen_fd("5=127.0.0.1:4556") == (("127.0.0.1", 4556), 5)
    assert parse_listen_fd("7=[::1]:4556") == (("::1", 4556), 7)
    with pytest.raises(InputError, match="expected FD=HOST:PORT"):
        parse_listen_fd("127.0.0.1:4556")
