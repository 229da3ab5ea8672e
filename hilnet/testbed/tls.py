"""Node certificates for a run: who gets TLS, and the CA and certificates a testbed hands out.

The policy of a node is its own ``tls``, else the scenario's, else the
backend's default: ``off`` on the local backends (loopback, netns) unless the
scenario asks, ``require`` on a bench, where real boards talk over real
networks (docs/cla.md). When any node of a run uses TLS, the testbed makes a
CA for that run alone (``RUN/pki``: it signs nothing else and dies with the
run's folder) and a certificate for every node, so an ``enable`` node can
still authenticate a ``require`` one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hilnet.agent.cla.tcpcl_tls import TlsFiles
from hilnet.agent.pki import provision
from hilnet.agent.protocol import HostPort, TcpclConfig
from hilnet.scenario.model import Scenario, TlsMode

LOCAL_DEFAULT: TlsMode = "off"
BENCH_DEFAULT: TlsMode = "require"


def run_pki(scenario: Scenario, run_dir: str, default: TlsMode) -> dict[str, TlsFiles]:
    """Each node's certificate, key and CA under ``run_dir/pki``; {} when no node uses TLS."""
    if all(scenario.tls_of(n.name, default) == "off" for n in scenario.nodes):
        return {}
    folder = os.path.abspath(os.path.join(run_dir, "pki"))
    return provision(folder, {n.name: n.eid for n in scenario.nodes})


def tcpcl_config(
    scenario: Scenario,
    node: str,
    listen: HostPort | None,
    peers: Mapping[str, HostPort],
    files: Mapping[str, TlsFiles],
    default: TlsMode,
) -> TcpclConfig:
    """The TCPCL settings of ``node``: addresses, and its TLS policy with the files it needs."""
    mode = scenario.tls_of(node, default)
    f = files.get(node)
    if mode == "off" or f is None:
        return TcpclConfig(listen, dict(peers))
    return TcpclConfig(listen, dict(peers), mode, f.cert, f.key, f.ca)
