"""The ``loopback`` backend: no privileges, everything on 127.0.0.1.

Agents are local processes. An Ethernet link becomes a TCP stream relay
(``tcp://`` endpoints): agent ``a`` reaches ``b`` by connecting to the relay's
port at end ``a``, which connects onward to ``b``'s real TCPCL port, with the
link's delay, rate and outages applied to the stream (an outage stalls it:
TCP would retransmit, so nothing is dropped inside the relay). Only end ``a``
connects, so each link carries one TCPCLv4 session. A serial link is a pty at
each end through the emulator, paced at the link's baud.
"""

from __future__ import annotations

import os
import socket

from hilnet.errors import TestbedError
from hilnet.scenario.model import Scenario
from hilnet.testbed.base import LinkRuntime, NodeRuntime, pty_specs, serial_cla


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackTestbed:
    name = "loopback"

    def __init__(self, scenario: Scenario, run_dir: str):
        self.scenario = scenario
        self.run_dir = run_dir
        self.nodes: dict[str, NodeRuntime] = {}
        self.links: dict[str, LinkRuntime] = {}

    def build(self) -> None:
        sc = self.scenario
        pty_dir = os.path.join(self.run_dir, "pty")
        os.makedirs(pty_dir, exist_ok=True)
        eid = {n.name: n.eid for n in sc.nodes}
        clas: dict[str, list[dict]] = {n.name: [] for n in sc.nodes}
        tcpcl_port: dict[str, int] = {}
        tcpcl_peers: dict[str, dict[str, str]] = {n.name: {} for n in sc.nodes}
        try:
            for link in sc.links:
                if link.medium == "serial":
                    a_spec, b_spec, a_path, b_path = pty_specs(link, pty_dir)
                    clas[link.a].append(serial_cla(a_path, link.forward.baud, eid[link.b], link.forward.delay_ns))
                    clas[link.b].append(serial_cla(b_path, link.backward.baud, eid[link.a], link.backward.delay_ns))
                else:
                    for n in (link.a, link.b):
                        tcpcl_port.setdefault(n, free_port())
                    relay_a, relay_b = free_port(), free_port()
                    a_spec = f"tcp://127.0.0.1:{relay_a}?peer=127.0.0.1:{tcpcl_port[link.a]}"
                    b_spec = f"tcp://127.0.0.1:{relay_b}?peer=127.0.0.1:{tcpcl_port[link.b]}"
                    tcpcl_peers[link.a][eid[link.b]] = f"127.0.0.1:{relay_a}"
                self.links[link.name] = LinkRuntime(link.name, a_spec, b_spec)
        except OSError as e:
            raise TestbedError(f"loopback testbed: cannot allocate a port: {e}") from None
        for n in sc.nodes:
            if n.name in tcpcl_port:
                clas[n.name].append({"type": "tcpcl", "listen": f"127.0.0.1:{tcpcl_port[n.name]}",
                                     "peers": tcpcl_peers[n.name]})
            self.nodes[n.name] = NodeRuntime(n.name, n.eid, (), tuple(clas[n.name]),
                                             os.path.join(self.run_dir, "stores", f"{n.name}.store"))

    def teardown(self) -> list[str]:
        return []  # the processes and ptys belong to the controller and the engine
