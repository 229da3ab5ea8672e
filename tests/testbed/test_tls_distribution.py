"""How testbeds hand out certificates: a CA per run, a certificate per node, and the copy to a board."""

from __future__ import annotations

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hilnet.agent.cla.tcpcl_tls import node_ids_of
from hilnet.agent.protocol import HostPort
from hilnet.errors import TestbedError
from hilnet.scenario.load import load_scenario_text
from hilnet.testbed.tls import BENCH_DEFAULT, LOCAL_DEFAULT, run_pki, send_tls_files, tcpcl_config

SCENARIO = """
hilnet: 1
clock: {duration: 5m}
nodes:
  a: {eid: ipn:1.0, tls: require}
  b: {eid: ipn:2.0}
  c: {eid: ipn:3.0, tls: off}
"""
PLAIN = "hilnet: 1\nclock: {duration: 5m}\nnodes:\n  a: {eid: ipn:1.0}\n  b: {eid: ipn:2.0}\n"


class LocalShell:
    """A board's shell that is this machine's: the copy runs the very command it would run over SSH."""

    name = "pi-test"

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls: list[list[str]] = []

    def run(self, argv, timeout_s=60, data=None):
        self.calls.append(list(argv))
        if self.fail:
            return subprocess.CompletedProcess(argv, 2, b"", b"tar: cannot open: Read-only file system")
        return subprocess.run(list(argv), input=data, capture_output=True, timeout=timeout_s)


def test_a_run_ca_and_a_certificate_for_every_node_when_any_uses_tls(tmp_path):
    sc = load_scenario_text(SCENARIO, "s.yaml")
    files = run_pki(sc, str(tmp_path), LOCAL_DEFAULT)
    assert set(files) == {"a", "b", "c"}
    for name, eid in (("a", "ipn:1.0"), ("b", "ipn:2.0")):
        pem = open(files[name].cert, "rb").read()
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        assert node_ids_of(der) == (eid,)
    peers = {"ipn:2.0": HostPort("10.0.0.2", 4556)}
    a = tcpcl_config(sc, "a", None, peers, files, LOCAL_DEFAULT)
    assert (a.tls, a.cert, a.ca) == ("require", files["a"].cert, files["a"].ca)
    assert tcpcl_config(sc, "b", None, peers, files, LOCAL_DEFAULT).tls == "off"  # local default
    assert tcpcl_config(sc, "b", None, peers, files, BENCH_DEFAULT).tls == "require"  # a bench's
    assert tcpcl_config(sc, "c", None, peers, files, BENCH_DEFAULT).tls == "off"  # its own word wins


def test_no_pki_when_nobody_uses_tls_locally_but_on_a_bench(tmp_path):
    sc = load_scenario_text(PLAIN, "s.yaml")
    assert run_pki(sc, str(tmp_path / "local"), LOCAL_DEFAULT) == {}
    assert not (tmp_path / "local" / "pki").exists()
    assert set(run_pki(sc, str(tmp_path / "bench"), BENCH_DEFAULT)) == {"a", "b"}


def test_copy_to_a_board_keeps_the_key_private(tmp_path):
    sc = load_scenario_text(PLAIN, "s.yaml")
    files = run_pki(sc, str(tmp_path / "run"), BENCH_DEFAULT)
    remote = str(tmp_path / "board" / "stores" / "run-1" / "tls")
    there = send_tls_files(LocalShell(), files["a"], remote)
    assert there.cert == f"{remote}/node.crt" and there.key == f"{remote}/node.key" and there.ca == f"{remote}/ca.crt"
    assert open(there.cert, "rb").read() == open(files["a"].cert, "rb").read()
    assert open(there.ca, "rb").read() == open(files["a"].ca, "rb").read()
    assert (tmp_path / "board" / "stores" / "run-1" / "tls" / "node.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "board" / "stores" / "run-1" / "tls").stat().st_mode & 0o777 == 0o700


def test_a_failed_copy_names_the_board(tmp_path):
    sc = load_scenario_text(PLAIN, "s.yaml")
    files = run_pki(sc, str(tmp_path), BENCH_DEFAULT)
    with pytest.raises(TestbedError, match="board pi-test: cannot copy the node's TLS certificate.*Read-only"):
        send_tls_files(LocalShell(fail=True), files["a"], "/srv/x")
