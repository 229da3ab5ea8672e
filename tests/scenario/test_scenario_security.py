"""BPSec in the scenario language: a stream's ``security``, a node's ``keys``, and the run's key files."""

from __future__ import annotations

import os
import stat

import pytest

from hilnet.bundle.bpsec import parse_keys
from hilnet.errors import ScenarioErrors
from hilnet.scenario.load import load_scenario_text
from hilnet.scenario.plan import compile_plan
from hilnet.scenario.plan_view import plan_to_json, render_plan
from hilnet.testbed.runkeys import needs_keys, write_run_keys

BASE = """\
hilnet: 1
name: sec
clock: {{scale: 60, duration: 30m}}
nodes: {{a: {{eid: ipn:1.0}}, b: {{eid: ipn:2.0{keys}}}}}
links:
  a-b: {{ends: [a, b], medium: serial, baud: 9600, delay: 10ms}}
traffic:
{traffic}
"""


def _load(traffic: str, keys: str = "", path: str = "s.yaml"):
    return load_scenario_text(BASE.format(traffic=traffic, keys=keys), path)


def test_security_is_read_and_reaches_the_plan():
    s = _load(
        "  - {name: t, from: a, to: b, size: 4B, security: {integrity: hmac-sha512, confidentiality: aes128-gcm}}"
    )
    (t,) = s.traffic
    assert (t.integrity, t.confidentiality) == ("hmac-sha512", "aes128-gcm")
    plan = compile_plan(s)
    (inject,) = [a for a in plan.actions if a.kind == "inject"]
    assert (inject.integrity, inject.confidentiality) == ("hmac-sha512", "aes128-gcm")
    assert "hmac-sha512 aes128-gcm" in render_plan(plan)
    assert any(a["details"].get("integrity") == "hmac-sha512" for a in plan_to_json(plan)["actions"])
    plain = _load("  - {name: t, from: a, to: b, size: 4B}")
    assert (plain.traffic[0].integrity, plain.traffic[0].confidentiality) == (None, None)
    assert not needs_keys(plain) and needs_keys(s)


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ("{integrity: hmac-sha1}", "s.yaml:8:63: traffic 't' security integrity is 'hmac-sha1'"),
        ("{confidentiality: aes256-gcn}", "did you mean 'aes256-gcm'?"),
        ("{secrecy: aes256-gcm}", "s.yaml:8:52: unknown key 'secrecy' in traffic 't' security"),
        ("{}", "s.yaml:8:51: traffic 't' security is empty"),
        ("yes", "s.yaml:8:51: traffic 't' security is the boolean yes; expected a mapping"),
    ],
)
def test_security_errors_say_where_and_what(security, message):
    with pytest.raises(ScenarioErrors) as e:
        _load(f"  - {{name: t, from: a, to: b, size: 4B, security: {security}}}")
    assert message in str(e.value), str(e.value)


def test_a_node_brings_its_own_keys(tmp_path):
    own = tmp_path / "b.keys"
    own.write_text("ipn:1.0 integrity " + "ab" * 16 + "\n")
    s = _load("  - {name: t, from: a, to: b, size: 4B}", ", keys: b.keys", str(tmp_path / "s.yaml"))
    assert s.node("b").keys == str(own) and s.node("a").keys is None
    paths = write_run_keys(s, str(tmp_path / "run"))
    assert paths["b"] == str(own)
    generated = parse_keys((tmp_path / "run" / "keys" / "a.keys").read_text())
    assert set(generated.integrity) == {"ipn:1.0", "ipn:2.0"}
    assert stat.S_IMODE(os.stat(paths["a"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "run" / "keys").st_mode) == 0o700


def test_a_bad_key_file_is_an_error_at_the_keys_line(tmp_path):
    (tmp_path / "bad.keys").write_text("# mine\nipn:1.0 integrity 12\n")
    with pytest.raises(ScenarioErrors) as e:
        _load("  - {name: t, from: a, to: b, size: 4B}", ", keys: bad.keys", str(tmp_path / "s.yaml"))
    assert "s.yaml:4:52: node 'b' keys: bad.keys:2:19: an integrity key has 16 to 128 bytes, this one 1" in str(e.value)
    with pytest.raises(ScenarioErrors, match="cannot read missing.keys"):
        _load("  - {name: t, from: a, to: b, size: 4B}", ", keys: missing.keys", str(tmp_path / "s.yaml"))


def test_the_plan_counts_security_blocks_in_the_offered_load():
    def offered(security: str) -> int:
        plan = compile_plan(_load(f"  - {{name: t, from: a, to: b, size: 1KiB, count: 3{security}}}"))
        return sum(load.offered_bytes for load in plan.loads)

    plain, signed = offered(""), offered(", security: {integrity: hmac-sha512}")
    both = offered(", security: {integrity: hmac-sha512, confidentiality: aes256-gcm}")
    assert 3 * 80 < signed - plain < both - plain < 3 * 300
