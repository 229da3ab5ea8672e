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

import io
import os
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from typing import Protocol

from hilnet.agent.cla.tcpcl_tls import TlsFiles
from hilnet.agent.pki import provision
from hilnet.agent.protocol import HostPort, TcpclConfig
from hilnet.errors import TestbedError
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
    return TcpclConfig(listen, dict(peers), tls=mode, cert=f.cert, key=f.key, ca=f.ca)


class RemoteShell(Protocol):
    """What copying files to a board needs of its SSH connection (:class:`hilnet.testbed.ssh.SshBoard`)."""

    name: str

    def run(
        self, argv: Sequence[str], timeout_s: float = ..., data: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]: ...


def send_tls_files(ssh: RemoteShell, files: TlsFiles, remote_dir: str) -> TlsFiles:
    """Copy a node's certificate, key and CA into ``remote_dir`` on its board; returns their paths there.

    One tar stream over the board's SSH connection, unpacked under umask 077: the
    key is 0600 and the folder 0700 there too, owned by the user the agent runs as.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, arcname, mode in (
            (files.cert, "node.crt", 0o644),
            (files.key, "node.key", 0o600),
            (files.ca, "ca.crt", 0o644),
        ):
            info = tar.gettarinfo(path, arcname)
            info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "", ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
    script = 'umask 077 && mkdir -p "$0" && tar --no-same-owner -C "$0" -xf -'
    p = ssh.run(["sh", "-c", script, remote_dir], timeout_s=60, data=buf.getvalue())
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip()[-300:]
        raise TestbedError(f"board {ssh.name}: cannot copy the node's TLS certificate to {remote_dir}: {err}")
    d = remote_dir.rstrip("/")
    return TlsFiles(f"{d}/node.crt", f"{d}/node.key", f"{d}/ca.crt")
