"""The ``loopback`` backend: no privileges, everything on 127.0.0.1.

Agents are local processes. An Ethernet link becomes a TCP stream relay
(``tcp://`` endpoints): agent ``a`` reaches ``b`` by connecting to the relay's
port at end ``a``, which connects onward to ``b``'s real TCPCL port, with the
link's delay, rate and outages applied to the stream (an outage stalls it:
TCP would retransmit, so nothing is dropped inside the relay). Only end ``a``
connects, so each link carries one TCPCLv4 session. A ``cl: ltp`` link is a
datagram relay (``udp://`` endpoints) instead: each agent sends its LTP
segments to its end's port and the emulator delivers them, delayed, paced,
lost or gated like frames, to the other agent's LTP port. A serial link is a
pty at each end through the emulator, paced at the link's baud.
"""

from __future__ import annotations

import os
import random
import socket

from hilnet.agent.protocol import ClaConfig, HostPort, LtpConfig, TcpclV3Config
from hilnet.errors import TestbedError
from hilnet.scenario.model import ConvergenceLayer, Scenario
from hilnet.testbed.base import LinkRuntime, NodeRuntime, local_agent_command, pty_specs, refuse_unwired_cls, serial_cla
from hilnet.testbed.runkeys import write_run_keys
from hilnet.testbed.tls import LOCAL_DEFAULT, run_pki, tcpcl_config


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# The convergence layers this backend wires (Link.cl); others are refused before anything is built.
WIRED_CLS: frozenset[ConvergenceLayer] = frozenset({"tcpcl", "tcpclv3", "serial", "ltp"})


class PortPool:
    """Distinct free TCP ports on 127.0.0.1, below the OS's ephemeral range.

    Ports are held bound until ``release()``, so one build never hands out a
    port twice (``free_port()`` called in a row can return the same one once
    it is closed). They come from below the ephemeral range because the
    agents' outgoing connections take ephemeral ports: an agent connecting
    early could otherwise take a port another agent is about to listen on
    (seen at 50 nodes: EADDRINUSE at configure).
    """

    def __init__(self, low: int = 20000):
        self._low = low
        self._high = _ephemeral_low()
        self._held: list[socket.socket] = []
        self._rng = random.Random()

    def take(self) -> int:
        if self._high - self._low > 1000:
            for _ in range(200):
                port = self._rng.randrange(self._low, self._high)
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                self._held.append(s)
                return port
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no room below: let the OS pick
        s.bind(("127.0.0.1", 0))
        self._held.append(s)
        return s.getsockname()[1]

    def release(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()


def _ltp_link(
    a: str, b: str, eid: dict[str, str], ports: PortPool, port: dict[str, int], peers: dict[str, dict[str, HostPort]]
) -> tuple[str, str]:
    """The ``udp://`` endpoint specs of an LTP link between ``a`` and ``b``; notes each node's port and peers."""
    for n in (a, b):
        if n not in port:
            port[n] = ports.take()
    relay_a, relay_b = ports.take(), ports.take()
    peers[a][eid[b]] = HostPort("127.0.0.1", relay_a)  # what a sends to end a leaves end b towards b
    peers[b][eid[a]] = HostPort("127.0.0.1", relay_b)
    return (
        f"udp://127.0.0.1:{relay_a}?peer=127.0.0.1:{port[a]}",
        f"udp://127.0.0.1:{relay_b}?peer=127.0.0.1:{port[b]}",
    )


class LoopbackTestbed:
    name = "loopback"

    def __init__(self, scenario: Scenario, run_dir: str):
        self.scenario = scenario
        self.run_dir = run_dir
        self.nodes: dict[str, NodeRuntime] = {}
        self.links: dict[str, LinkRuntime] = {}

    def build(self) -> None:
        sc = self.scenario
        refuse_unwired_cls(self.scenario, "loopback", WIRED_CLS)
        pty_dir = os.path.join(self.run_dir, "pty")
        os.makedirs(pty_dir, exist_ok=True)
        eid = {n.name: n.eid for n in sc.nodes}
        clas: dict[str, list[ClaConfig]] = {n.name: [] for n in sc.nodes}
        tcpcl_port: dict[str, int] = {}
        tcpcl_peers: dict[str, dict[str, HostPort]] = {n.name: {} for n in sc.nodes}
        v3_port: dict[str, int] = {}  # nodes with a cl: tcpclv3 link -> their TCPCLv3 listener
        v3_peers: dict[str, dict[str, HostPort]] = {n.name: {} for n in sc.nodes}
        ltp_port: dict[str, int] = {}
        ltp_peers: dict[str, dict[str, HostPort]] = {n.name: {} for n in sc.nodes}
        ports = PortPool()
        try:
            for link in sc.links:
                if link.medium == "serial":
                    a_spec, b_spec, a_path, b_path = pty_specs(link, pty_dir)
                    clas[link.a].append(serial_cla(a_path, link.forward, eid[link.b]))
                    clas[link.b].append(serial_cla(b_path, link.backward, eid[link.a]))
                elif link.convergence_layer == "ltp":
                    a_spec, b_spec = _ltp_link(link.a, link.b, eid, ports, ltp_port, ltp_peers)
                else:
                    v3 = link.convergence_layer == "tcpclv3"
                    port_of, peers_of = (v3_port, v3_peers) if v3 else (tcpcl_port, tcpcl_peers)
                    for n in (link.a, link.b):
                        if n not in port_of:
                            port_of[n] = ports.take()
                    relay_a, relay_b = ports.take(), ports.take()
                    a_spec = f"tcp://127.0.0.1:{relay_a}?peer=127.0.0.1:{port_of[link.a]}"
                    b_spec = f"tcp://127.0.0.1:{relay_b}?peer=127.0.0.1:{port_of[link.b]}"
                    peers_of[link.a][eid[link.b]] = HostPort("127.0.0.1", relay_a)
                self.links[link.name] = LinkRuntime(link.name, a_spec, b_spec)
        except OSError as e:
            raise TestbedError(f"loopback testbed: cannot allocate a port: {e}") from None
        finally:
            ports.release()  # the engine and the agents bind them next
        keys = write_run_keys(sc, self.run_dir)
        tls_files = run_pki(sc, self.run_dir, LOCAL_DEFAULT)
        for node in sc.nodes:
            name = node.name
            if name in tcpcl_port:
                listen = HostPort("127.0.0.1", tcpcl_port[name])
                clas[name].append(tcpcl_config(sc, name, listen, tcpcl_peers[name], tls_files, LOCAL_DEFAULT))
            if name in v3_port:
                clas[name].append(TcpclV3Config(HostPort("127.0.0.1", v3_port[name]), v3_peers[name]))
            if name in ltp_port:
                clas[name].append(LtpConfig(HostPort("127.0.0.1", ltp_port[name]), ltp_peers[name]))
            store = os.path.join(self.run_dir, "stores", f"{name}.store")
            self.nodes[name] = NodeRuntime(
                name,
                node.eid,
                local_agent_command(),
                tuple(clas[name]),
                os.path.abspath(store),
                keys_path=keys.get(name),
            )

    def teardown(self) -> list[str]:
        return []  # the processes and ptys belong to the controller and the engine
