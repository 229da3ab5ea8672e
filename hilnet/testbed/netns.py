"""The ``netns`` backend: one Linux network namespace per node, as root.

Each Ethernet link end is a veth pair: one side inside the node's namespace
with an address on the link's own /24 (``10.77.<link>.1`` at end ``a``,
``.2`` at end ``b``), the other side in the root namespace, where the
emulator bridges the two ends frame by frame (``eth://`` endpoints, the same
code that drives a bench NIC). Agents run under ``ip netns exec`` and speak
TCPCLv4 on port 4556 to the address of the far end. Serial links are ptys as
in the loopback backend (a pty is a file, reachable from any namespace).

Everything is named after the run (``hn<id>-<node>``, ``hx<id><n>a``), and a
marker file records the controller's pid, so that a leftover of a crashed run
is recognised and removed at the next start instead of colliding.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping

from hilnet.agent.cla.tcpcl_tls import TlsFiles
from hilnet.agent.protocol import ClaConfig, HostPort, LtpConfig, TcpclV3Config
from hilnet.errors import TestbedError
from hilnet.scenario.model import ConvergenceLayer, Scenario
from hilnet.testbed.base import LinkRuntime, NodeRuntime, local_agent_command, pty_specs, refuse_unwired_cls, serial_cla
from hilnet.testbed.runkeys import write_run_keys
from hilnet.testbed.tls import LOCAL_DEFAULT, run_pki, tcpcl_config

MARKER_DIR = "/run/hilnet/netns"
TCPCL_PORT = 4556
TCPCLV3_PORT = 4557  # a node's TCPCLv3 listener, beside its TCPCLv4 one (a node may have links of both)
LTP_PORT = 1113  # RFC 7122


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise TestbedError(f"`ip {' '.join(args)}` failed: {p.stderr.strip() or p.returncode}")
    return p


def netns_available() -> tuple[bool, str]:
    """Whether this process can build namespaces, and why not."""
    if not sys.platform.startswith("linux"):
        return False, "network namespaces are Linux only"
    if os.geteuid() != 0:
        return False, "not root (network namespaces and veth pairs need CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return False, "the `ip` command (iproute2) is not installed"
    probe = f"hnprobe{os.getpid()}"
    p = run_ip("netns", "add", probe, check=False)
    if p.returncode != 0:
        return False, f"cannot create a network namespace: {p.stderr.strip()}"
    run_ip("netns", "del", probe, check=False)
    return True, "root on Linux with network namespaces"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_namespaces(marker: str) -> list[str]:
    """Remove what crashed runs left, then mark ``marker`` as this live run's; returns what was removed.

    The marker holds the controller's pid, so the next run can tell its
    namespaces from a live run's (see :func:`clean_leftovers`)."""
    removed = clean_leftovers()
    os.makedirs(MARKER_DIR, exist_ok=True)
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    return removed


def clean_leftovers() -> list[str]:
    """Remove namespaces of runs whose controller is gone; returns what was removed."""
    removed: list[str] = []
    if not os.path.isdir(MARKER_DIR):
        return removed
    listed = run_ip("netns", "list", check=False).stdout.split()
    for rid in os.listdir(MARKER_DIR):
        path = os.path.join(MARKER_DIR, rid)
        try:
            pid = int(open(path).read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and _pid_alive(pid):
            continue
        for ns in listed:
            if ns.startswith(f"hn{rid}-"):
                run_ip("netns", "del", ns, check=False)
                removed.append(ns)
        for ifname in root_links(f"hx{rid}"):
            run_ip("link", "del", ifname, check=False)
            removed.append(ifname)
        try:
            os.unlink(path)
        except OSError:
            pass
    return removed


def root_links(prefix: str) -> list[str]:
    out = run_ip("-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                names.append(name)
    return names


def offloads_off(ns: str, ifname: str) -> None:
    """Turn segmentation offloads off on ``ifname`` inside namespace ``ns``.

    Offload inside the namespace would hand the emulator 64 KiB "frames" that
    no wire carries; the emulator must see MTU-sized frames.
    """
    code = "import sys; from hilnet.link.endpoints.eth import disable_offloads; disable_offloads(sys.argv[1])"
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, ifname], capture_output=True, text=True)
    if p.returncode != 0:
        raise TestbedError(f"cannot disable offloads on {ifname} in {ns}: {p.stderr.strip()[-300:]}")


def _mac(k: int, host: int) -> str:
    """The inner MAC of Ethernet link ``k``'s end ``host`` (1: a, 2: b): locally administered, fixed."""
    return f"02:77:00:{k:02x}:00:{host:02x}"


def _static_neighbours(ns_a: str, ns_b: str, k: int) -> None:
    """Each end of Ethernet link ``k`` knows the other's MAC for good: no ARP on the emulated link.

    The link is point to point and the testbed knows both ends. With ARP, a packet
    sent before the link's first window (or during a cut) leaves the neighbour
    unresolved, asked again only once a second: a scenario minute at scale 60,
    which no agent can shorten without privileges.
    """
    for ns, end, peer in ((ns_a, "a", 2), (ns_b, "b", 1)):
        run_ip(
            "-n",
            ns,
            "neigh",
            "replace",
            f"10.77.{k}.{peer}",
            "lladdr",
            _mac(k, peer),
            "dev",
            f"l{k}{end}",
            "nud",
            "permanent",
        )


# The convergence layers this backend wires (Link.cl); others are refused before anything is built.
WIRED_CLS: frozenset[ConvergenceLayer] = frozenset({"tcpcl", "tcpclv3", "serial", "ltp"})


class _IpPeers:
    """Who each node reaches over which IP convergence layer, and the CLA entries that makes.

    Link ``k`` joins 10.77.k.1 (end a) and 10.77.k.2 (end b); end a dials a TCPCL, LTP knows both.
    """

    def __init__(self, eids: dict[str, str]):
        self.eid = eids
        self.peers: dict[str, dict[str, dict[str, HostPort]]] = {"tcpcl": {}, "tcpclv3": {}, "ltp": {}}

    def add(self, cl: str, a: str, b: str, k: int) -> None:
        table = self.peers[cl]
        for node in (a, b):
            table.setdefault(node, {})
        port = {"tcpcl": TCPCL_PORT, "tcpclv3": TCPCLV3_PORT, "ltp": LTP_PORT}[cl]
        table[a][self.eid[b]] = HostPort(f"10.77.{k}.2", port)
        if cl == "ltp":
            table[b][self.eid[a]] = HostPort(f"10.77.{k}.1", port)

    def clas(self, sc: Scenario, node: str, tls_files: Mapping[str, TlsFiles]) -> list[ClaConfig]:
        out: list[ClaConfig] = []
        anywhere = "0.0.0.0"
        if node in self.peers["tcpcl"]:
            listen = HostPort(anywhere, TCPCL_PORT)
            out.append(tcpcl_config(sc, node, listen, self.peers["tcpcl"][node], tls_files, LOCAL_DEFAULT))
        if node in self.peers["tcpclv3"]:
            out.append(TcpclV3Config(HostPort(anywhere, TCPCLV3_PORT), self.peers["tcpclv3"][node]))
        if node in self.peers["ltp"]:
            out.append(LtpConfig(HostPort(anywhere, LTP_PORT), self.peers["ltp"][node]))
        return out


class NetnsTestbed:
    name = "netns"

    def __init__(self, scenario: Scenario, run_dir: str):
        self.scenario = scenario
        self.run_dir = run_dir
        self.rid = secrets.token_hex(2)
        self.nodes: dict[str, NodeRuntime] = {}
        self.links: dict[str, LinkRuntime] = {}
        self.namespaces: dict[str, str] = {}
        self.leftovers_removed: list[str] = []
        self._marker = os.path.join(MARKER_DIR, self.rid)

    def ns_of(self, node: str) -> str:
        return self.namespaces[node]

    def build(self) -> None:
        refuse_unwired_cls(self.scenario, "netns", WIRED_CLS)
        ok, why = netns_available()
        if not ok:
            raise TestbedError(f"netns backend unavailable: {why}; use --backend loopback")
        self.leftovers_removed = claim_namespaces(self._marker)
        sc = self.scenario
        eid = {n.name: n.eid for n in sc.nodes}
        pty_dir = os.path.join(self.run_dir, "pty")
        os.makedirs(pty_dir, exist_ok=True)
        clas: dict[str, list[ClaConfig]] = {n.name: [] for n in sc.nodes}
        ip = _IpPeers({n.name: n.eid for n in sc.nodes})
        try:
            for i, n in enumerate(sc.nodes):
                ns = f"hn{self.rid}-{i}"
                run_ip("netns", "add", ns)
                self.namespaces[n.name] = ns
                run_ip("-n", ns, "link", "set", "lo", "up")
            eth_index = 0
            for link in sc.links:
                if link.medium == "serial":
                    a_spec, b_spec, a_path, b_path = pty_specs(link, pty_dir)
                    clas[link.a].append(serial_cla(a_path, link.forward, eid[link.b]))
                    clas[link.b].append(serial_cla(b_path, link.backward, eid[link.a]))
                    self.links[link.name] = LinkRuntime(link.name, a_spec, b_spec)
                    continue
                if eth_index >= 250:
                    raise TestbedError("netns backend: more than 250 Ethernet links are not supported")
                k = eth_index
                eth_index += 1
                specs = [self._veth(k, end, node, host) for end, node, host in (("a", link.a, 1), ("b", link.b, 2))]
                _static_neighbours(self.namespaces[link.a], self.namespaces[link.b], k)
                ip.add(link.convergence_layer, link.a, link.b, k)
                self.links[link.name] = LinkRuntime(link.name, specs[0], specs[1])
        except BaseException:
            self.teardown()
            raise
        keys = write_run_keys(sc, self.run_dir)
        tls_files = run_pki(sc, self.run_dir, LOCAL_DEFAULT)
        for n in sc.nodes:
            clas[n.name] += ip.clas(sc, n.name, tls_files)
            self.nodes[n.name] = NodeRuntime(
                n.name,
                n.eid,
                local_agent_command(("ip", "netns", "exec", self.namespaces[n.name])),
                tuple(clas[n.name]),
                os.path.abspath(os.path.join(self.run_dir, "stores", f"{n.name}.store")),
                keys_path=keys.get(n.name),
            )

    def _veth(self, k: int, end: str, node: str, host: int) -> str:
        """Link ``k``'s veth pair for its ``end`` at ``node`` (address 10.77.k.host); the emulator's endpoint."""
        outer, inner = f"hx{self.rid}{k}{end}", f"l{k}{end}"
        ns = self.namespaces[node]
        run_ip("link", "add", outer, "type", "veth", "peer", "name", inner, "address", _mac(k, host), "netns", ns)
        run_ip("-n", ns, "addr", "add", f"10.77.{k}.{host}/24", "dev", inner)
        run_ip("-n", ns, "link", "set", inner, "up")
        run_ip("link", "set", outer, "up")
        offloads_off(ns, inner)
        return f"eth://{outer}"

    def teardown(self) -> list[str]:
        left = []
        for ns in self.namespaces.values():
            p = run_ip("netns", "del", ns, check=False)
            if p.returncode != 0 and "No such file" not in p.stderr:
                left.append(f"namespace {ns}: {p.stderr.strip()}")
        for ifname in root_links(f"hx{self.rid}"):
            p = run_ip("link", "del", ifname, check=False)
            # Deleting a namespace takes its veth peers with it, asynchronously: an
            # interface listed a moment ago may be gone by now, which is success.
            if p.returncode != 0 and ifname in root_links(ifname):
                left.append(f"interface {ifname}: {p.stderr.strip()}")
        try:
            os.unlink(self._marker)
        except OSError:
            pass
        return left
