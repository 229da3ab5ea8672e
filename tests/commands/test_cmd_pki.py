"""`hilnet pki init|issue`: a lab CA and node certificates that a TLS context accepts."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hilnet.agent.cla.tcpcl_tls import node_ids_of
from hilnet.cli import cli

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "iss-tdrs-ground.yaml"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_init_then_issue_by_eid_and_by_scenario_name(tmp_path):
    d = str(tmp_path / "lab")
    r = run("pki", "init", d)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "lab" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "lab").stat().st_mode & 0o777 == 0o700
    r = run("pki", "issue", "ipn:4.0", "--ca", d)
    assert r.exit_code == 0 and "ipn-4.0.crt" in r.output, r.output
    r = run("pki", "issue", "eac", "--ca", d, "--scenario", str(SCENARIO))
    assert r.exit_code == 0 and "eac (ipn:5.0)" in r.output, r.output
    cert = x509.load_pem_x509_certificate((tmp_path / "lab" / "eac.crt").read_bytes())
    assert node_ids_of(cert.public_bytes(serialization.Encoding.DER)) == ("ipn:5.0",)
    assert (tmp_path / "lab" / "eac.key").stat().st_mode & 0o777 == 0o600
    # what the agent's TLS context loads, it loads without complaint
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "lab" / "eac.crt"), str(tmp_path / "lab" / "eac.key"))
    ctx.load_verify_locations(str(tmp_path / "lab" / "ca.crt"))


def test_nothing_is_overwritten_without_force(tmp_path):
    d = str(tmp_path / "lab")
    assert run("pki", "init", d).exit_code == 0
    before = (tmp_path / "lab" / "ca.crt").read_bytes()
    p = subprocess.run([sys.executable, "-m", "hilnet", "pki", "init", d], capture_output=True, text=True)
    assert p.returncode == 2 and "--force" in p.stderr and "Traceback" not in p.stderr
    assert (tmp_path / "lab" / "ca.crt").read_bytes() == before
    assert run("pki", "init", d, "--force").exit_code == 0
    assert (tmp_path / "lab" / "ca.crt").read_bytes() != before


def test_bad_node_and_missing_ca_are_clear_errors(tmp_path):
    cases = [
        (["issue", "cologne", "--ca", str(tmp_path)], "give --scenario"),
        (["issue", "ipn:4.1", "--ca", str(tmp_path)], "not a node id"),
        (["issue", "ipn:4.0", "--ca", str(tmp_path / "none")], "hilnet pki init"),
        (["issue", "cologne", "--scenario", str(SCENARIO)], "has no node 'cologne'"),
    ]
    run("pki", "init", str(tmp_path))
    for args, want in cases:
        p = subprocess.run([sys.executable, "-m", "hilnet", "pki", *args], capture_output=True, text=True)
        assert p.returncode == 2, (args, p.stderr)
        assert want in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
