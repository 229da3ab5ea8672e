"""Real agents over TCPCLv4 with TLS: certificates from `hilnet pki`, policies from the configure command.

The regression of issue 14 ("nobody let in"): a client that claimed to be the
next hop's node id used to receive that hop's bundles, and the agent deleted
them. With ``tls: require`` it gets no session, and the agent says why.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.agent.agent_procs import Procs, free_port

PY = sys.executable
ROUTE = {"*": "ipn:1.0"}


def pki(*args: str) -> None:
    p = subprocess.run([PY, "-m", "hilnet", "pki", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    pki("init", str(folder))
    for eid in ("ipn:1.0", "ipn:2.0", "ipn:3.0"):
        pki("issue", eid, "--ca", str(folder))
    return folder


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def tcpcl(lab, policy: str, cert_of: str | None, listen: int | None = None, peers: dict | None = None) -> dict:
    d: dict = {"type": "tcpcl", "peers": peers or {}}
    if listen is not None:
        d["listen"] = f"127.0.0.1:{listen}"
    if policy != "off":
        stem = cert_of.replace(":", "-")
        d |= {
            "tls": policy,
            "cert": str(lab / f"{stem}.crt"),
            "key": str(lab / f"{stem}.key"),
            "ca": str(lab / "ca.crt"),
        }
    return d


def inject(procs: Procs, name: str, dest: str) -> str:
    r = procs.call(name, {"cmd": "inject", "dest": dest, "size": 2000, "seed": 1, "lifetime_ns": 600 * 10**9})
    return r["bundle"]


def test_require_on_both_sides_delivers_inside_tls(procs, lab):
    port = free_port()
    procs.start("a")
    procs.configure("a", "ipn:1.0", [tcpcl(lab, "require", "ipn:1.0", listen=port)])
    procs.start("b")
    procs.configure("b", "ipn:2.0", [tcpcl(lab, "require", "ipn:2.0", peers={"ipn:1.0": f"127.0.0.1:{port}"})], ROUTE)
    key = inject(procs, "b", "ipn:1.0")
    procs.wait(lambda: procs.of("a", "delivered"), 20, "delivery at a")
    assert procs.of("a", "delivered")[0]["bundle"] == key
    assert all(e["detail"]["tls"] is True for e in procs.of("a", "session-up") + procs.of("b", "session-up"))
    assert not procs.of("a", "tls-failed") and not procs.of("b", "tls-failed")


def test_peer_with_a_certificate_for_another_node_gets_nothing(procs, lab):
    port = free_port()
    procs.start("a")
    procs.configure("a", "ipn:1.0", [tcpcl(lab, "require", "ipn:1.0", listen=port)], routes={"*": "ipn:2.0"})
    inject(procs, "a", "ipn:2.7")  # waits at a for its next hop, ipn:2.0
    # mallory says it is ipn:2.0 but holds the certificate the CA issued to ipn:3.0
    procs.start("mallory")
    procs.configure("mallory", "ipn:2.0", [tcpcl(lab, "require", "ipn:3.0", peers={"ipn:1.0": f"127.0.0.1:{port}"})])
    procs.wait(lambda: procs.of("a", "tls-failed"), 20, "a refuses mallory")
    ev = procs.of("a", "tls-failed")[0]
    assert ev["peer"] == "ipn:2.0" and ev["certified"] == "ipn:3.0"
    assert "ipn:2.0" in ev["reason"] and "ipn:3.0" in ev["reason"]
    assert not procs.of("a", "session-up") and not procs.of("a", "forwarded")
    assert procs.status("a")["stored"] == 1  # the bundle stays with a
    assert not procs.of("mallory", "received")


def test_plain_peer_against_require_gets_an_event_with_the_reason(procs, lab):
    port = free_port()
    procs.start("a")
    procs.configure("a", "ipn:1.0", [tcpcl(lab, "require", "ipn:1.0", listen=port)])
    procs.start("b")
    procs.configure("b", "ipn:2.0", [tcpcl(lab, "off", None, peers={"ipn:1.0": f"127.0.0.1:{port}"})])
    procs.wait(lambda: procs.of("a", "tls-failed") and procs.of("b", "tls-failed"), 20, "tls-failed on both")
    assert "does not offer TLS" in procs.of("a", "tls-failed")[0]["reason"]
    b_ev = procs.of("b", "tls-failed")[0]
    assert "offers TLS" in b_ev["reason"] and b_ev["peer"] == "ipn:1.0"
    assert not procs.of("a", "session-up") and not procs.of("b", "session-up")


def test_enable_against_off_falls_back_to_plain(procs, lab):
    port = free_port()
    procs.start("a")
    procs.configure("a", "ipn:1.0", [tcpcl(lab, "off", None, listen=port)])
    procs.start("b")
    procs.configure("b", "ipn:2.0", [tcpcl(lab, "enable", "ipn:2.0", peers={"ipn:1.0": f"127.0.0.1:{port}"})], ROUTE)
    inject(procs, "b", "ipn:1.0")
    procs.wait(lambda: procs.of("a", "delivered"), 20, "delivery at a")
    assert [e["detail"]["tls"] for e in procs.of("b", "session-up")] == [False]
    assert not procs.of("b", "tls-failed")


def test_tls_policy_without_certificate_is_a_configure_error(procs, lab):
    procs.start("a")
    with pytest.raises(Exception, match="cert"):
        procs.configure("a", "ipn:1.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{free_port()}", "tls": "require"}])


def test_unreadable_certificate_is_a_configure_error_naming_the_file(procs, lab, tmp_path):
    procs.start("a")
    cla = tcpcl(lab, "require", "ipn:1.0", listen=free_port())
    cla["cert"] = str(tmp_path / "missing.crt")
    with pytest.raises(Exception, match="missing.crt"):
        procs.configure("a", "ipn:1.0", [cla])
    assert procs.status("a")  # the agent lives on and still answers
