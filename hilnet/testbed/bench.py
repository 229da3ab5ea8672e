"""The ``bench`` backend: real boards over SSH, the rest of the scenario in namespaces here.

Build: one SSH master connection per board (:mod:`hilnet.testbed.ssh`), a
probe of each (:mod:`hilnet.testbed.board_probe`) that refuses a board whose
hilnet differs from the controller's and warns about an unsynchronised clock,
each board interface given its bench address, then the link ends: a board's
end is the emulator host's port it is cabled to (``serial://`` device,
``rfc2217://`` port, ``eth://`` NIC), a virtual node's end a pty or a veth
into its namespace (as the ``netns`` backend builds them). A board's agent is
``ssh board .../bin/hilnet agent --stdio``; its store lives on the board
under the bench's store directory, one folder per run, removed at teardown.

Faults: ``crash`` is ``kill -9`` over SSH; ``power-cut`` runs the board's
power commands on this host and waits for the board to answer again.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shlex
import shutil
import subprocess

from hilnet.agent.cla.tcpcl_tls import TlsFiles
from hilnet.agent.protocol import ClaConfig, HostPort, TcpclV3Config
from hilnet.bench.model import Bench, Board, NicEnd, Power, UartEnd
from hilnet.clock import NS_PER_S, Clock, MonotonicClock
from hilnet.errors import TestbedError
from hilnet.scenario.model import ConvergenceLayer, Link, Scenario
from hilnet.testbed.base import LinkRuntime, NodeRuntime, local_agent_command, refuse_unwired_cls, serial_cla
from hilnet.testbed.boards import each, probe, ssh_config_of, venv_bin
from hilnet.testbed.identity import identity
from hilnet.testbed.netns import (
    MARKER_DIR,
    TCPCL_PORT,
    TCPCLV3_PORT,
    claim_namespaces,
    netns_available,
    offloads_off,
    root_links,
    run_ip,
)
from hilnet.testbed.runkeys import write_run_keys
from hilnet.testbed.ssh import SshBoard, control_dir, remote_path
from hilnet.testbed.tls import BENCH_DEFAULT, run_pki, send_tls_files, tcpcl_config

BOOT_TIMEOUT_S = 180.0  # a board switched on again must answer over SSH within this
POWER_COMMAND_TIMEOUT_S = 30.0


# The convergence layers this backend wires (Link.cl); others are refused before anything is built.
WIRED_CLS: frozenset[ConvergenceLayer] = frozenset({"tcpcl", "tcpclv3", "serial"})


class BenchTestbed:
    name = "bench"

    def __init__(self, scenario: Scenario, run_dir: str, bench: Bench, clock: Clock | None = None):
        self.scenario = scenario
        self.clock: Clock = clock or MonotonicClock()
        self.run_dir = run_dir
        self.bench = bench
        self.rid = secrets.token_hex(2)
        self.run_id = f"{os.path.basename(os.path.abspath(run_dir))}-{self.rid}"
        self.nodes: dict[str, NodeRuntime] = {}
        self.links: dict[str, LinkRuntime] = {}
        self.warnings: list[str] = []
        self.leftovers_removed: list[str] = []
        self.boards: dict[str, Board] = {}  # node -> its board
        self.ssh: dict[str, SshBoard] = {}  # node -> the SSH connection to its board
        self.namespaces: dict[str, str] = {}  # virtual node -> namespace
        self._sockets: str | None = None
        self._marker = os.path.join(MARKER_DIR, self.rid)

    # -- build -------------------------------------------------------------------------

    def build(self) -> None:
        refuse_unwired_cls(self.scenario, "bench", WIRED_CLS)
        try:
            self._connect_boards()
            self._make_namespaces()
            clas, peers, v3_peers = self._wire_links()
            keys = write_run_keys(self.scenario, self.run_dir)
            tls = self._distribute_tls({n for n, p in peers.items() if p is not None})
            for n in self.scenario.nodes:
                cla = list(clas[n.name])
                tcpcl_peers = peers.get(n.name)
                if tcpcl_peers is not None:
                    listen = HostPort("0.0.0.0", TCPCL_PORT)
                    cla.append(tcpcl_config(self.scenario, n.name, listen, tcpcl_peers, tls, BENCH_DEFAULT))
                if n.name in v3_peers:  # TCPCLv3 has no TLS: it runs in the clear even on a bench
                    cla.append(TcpclV3Config(HostPort("0.0.0.0", TCPCLV3_PORT), v3_peers[n.name]))
                self.nodes[n.name] = self._runtime(n.name, n.eid, tuple(cla), keys.get(n.name))
        except BaseException:
            self.teardown()
            raise

    def _distribute_tls(self, tcpcl_nodes: set[str]) -> dict[str, TlsFiles]:
        """The run's CA and node certificates (TLS is required on a bench by default); a board's copied to it."""
        files = run_pki(self.scenario, self.run_dir, BENCH_DEFAULT)
        for node in sorted(tcpcl_nodes & set(self.boards) & set(files)):
            remote = f"{remote_path(self.boards[node].store_dir).rstrip('/')}/{self.run_id}/tls"
            files[node] = send_tls_files(self.ssh[node], files[node], remote)
        return files

    def _connect_boards(self) -> None:
        for node, board_name in self.bench.nodes:
            if any(n.name == node for n in self.scenario.nodes):
                self.boards[node] = self.bench.board(board_name)
        if not self.boards:
            return
        self._sockets = control_dir()
        config = ssh_config_of(self.bench)
        for node, board in self.boards.items():
            self.ssh[node] = SshBoard(board.name, board.ssh, self._sockets, config, self.clock)
        failed = [str(e) for e in each(self.boards, lambda n: self._prepare_board(n)).values() if e is not None]
        if failed:
            raise TestbedError("; ".join(failed))

    def _prepare_board(self, node: str) -> None:
        board, ssh = self.boards[node], self.ssh[node]
        ssh.connect()
        facts = probe(ssh, self.bench, board)
        mine = identity()
        if facts.get("identity") != mine:
            raise TestbedError(
                f"board {board.name} (node {node}) runs hilnet {facts.get('identity')}, this controller "
                f"{mine}; run: hilnet bench install {self.bench.source}"
            )
        if facts.get("clock_synchronised") is False:
            self.warnings.append(
                f"board {board.name} (node {node}): its clock is not synchronised (NTP); offsets are "
                "measured at the start, but it may drift during the run (see chrony in hardware.md)"
            )
        for link, n, end in self.bench.wiring:
            if n == node and isinstance(end, NicEnd):
                self._address(ssh, board, link, end)

    def _address(self, ssh: SshBoard, board: Board, link: str, end: NicEnd) -> None:
        """Give the board's interface its bench address (and bring it up) unless it has it already."""
        shown = ssh.run(["ip", "-o", "addr", "show", "dev", end.board_port])
        if shown.returncode != 0:
            raise TestbedError(
                f"board {board.name}: no interface {end.board_port} (link {link}); check the bench wiring"
            )
        if f" {end.address} " in shown.stdout.decode(errors="replace") + " ":
            return
        for argv in (
            ["ip", "addr", "replace", end.address, "dev", end.board_port],
            ["ip", "link", "set", end.board_port, "up"],
        ):
            p = ssh.run(argv)
            if p.returncode != 0:
                raise TestbedError(
                    f"board {board.name}: cannot give {end.board_port} the address {end.address} "
                    f"({p.stderr.decode(errors='replace').strip()}); set it in the board's network "
                    "configuration (firmware-config/) or let the SSH user run ip"
                )

    def _make_namespaces(self) -> None:
        virtual = [n.name for n in self.scenario.nodes if n.name not in self.boards]
        if not virtual:
            return
        ok, why = netns_available()
        if not ok:
            raise TestbedError(f"nodes {', '.join(virtual)} are on no board and run in namespaces here, but {why}")
        self.leftovers_removed = claim_namespaces(self._marker)
        for i, name in enumerate(virtual):
            ns = f"hn{self.rid}-{i}"
            run_ip("netns", "add", ns)
            self.namespaces[name] = ns
            run_ip("-n", ns, "link", "set", "lo", "up")

    def _wire_links(
        self,
    ) -> tuple[dict[str, list[ClaConfig]], dict[str, dict[str, HostPort] | None], dict[str, dict[str, HostPort]]]:
        eid = {n.name: n.eid for n in self.scenario.nodes}
        clas: dict[str, list[ClaConfig]] = {n: [] for n in eid}
        peers: dict[str, dict[str, HostPort] | None] = {n: None for n in eid}
        v3_peers: dict[str, dict[str, HostPort]] = {}  # nodes with a cl: tcpclv3 link -> their TCPCLv3 peers
        pty_dir = os.path.join(self.run_dir, "pty")
        os.makedirs(pty_dir, exist_ok=True)
        for k, link in enumerate(self.scenario.links):
            specs = []
            if link.medium == "serial":
                for node, params, far in ((link.a, link.forward, link.b), (link.b, link.backward, link.a)):
                    spec, port = self._serial_end(link, node, pty_dir)
                    specs.append(spec)
                    end = self.bench.end(link.name, node)
                    rtscts = isinstance(end, UartEnd) and end.rtscts
                    clas[node].append(serial_cla(port, params, eid[far], rtscts))
            else:
                addresses = self._addresses(link, k)
                v3 = link.convergence_layer == "tcpclv3"
                for node, host in ((link.a, addresses[0]), (link.b, addresses[1])):
                    specs.append(self._ethernet_end(link, node, host, k, "ab"[len(specs)]))
                    if v3:
                        v3_peers.setdefault(node, {})
                    elif peers[node] is None:
                        peers[node] = {}
                far_end = HostPort(str(ipaddress.ip_interface(addresses[1]).ip), TCPCLV3_PORT if v3 else TCPCL_PORT)
                (v3_peers if v3 else peers)[link.a][eid[link.b]] = far_end  # type: ignore[index]
            self.links[link.name] = LinkRuntime(link.name, specs[0], specs[1])
        return clas, peers, v3_peers

    def _serial_end(self, link: Link, node: str, pty_dir: str) -> tuple[str, str]:
        """(emulator endpoint spec, the port the agent opens) of one serial link end."""
        end = self.bench.end(link.name, node)
        if isinstance(end, UartEnd):
            params = link.forward if node == link.a else link.backward
            stop = 2 if params.bits_per_byte == 11 else 1
            query = f"baud={params.baud}&stopbits={stop}" + ("&rtscts=1" if end.rtscts else "")
            port = end.emulator_port
            spec = f"{port}?{query}" if port.startswith("rfc2217://") else f"serial://{port}?{query}"
            return spec, end.board_port
        path = os.path.abspath(f"{pty_dir}/{link.name}.{node}")
        return f"pty://{path}", path

    def _addresses(self, link: Link, k: int) -> tuple[str, str]:
        """The two ends' addresses with prefix: a board's from the bench, a virtual one's in the same network."""
        ends = [self.bench.end(link.name, n) for n in (link.a, link.b)]
        given = [e.address for e in ends if isinstance(e, NicEnd)]
        if not given:
            return f"10.77.{k % 250}.1/24", f"10.77.{k % 250}.2/24"
        net = ipaddress.ip_interface(given[0]).network
        taken = {ipaddress.ip_interface(a).ip for a in given}
        free = (h for h in net.hosts() if h not in taken)
        out = [e.address if isinstance(e, NicEnd) else f"{next(free)}/{net.prefixlen}" for e in ends]
        return out[0], out[1]

    def _ethernet_end(self, link: Link, node: str, address: str, k: int, side: str) -> str:
        end = self.bench.end(link.name, node)
        if isinstance(end, NicEnd):
            return f"eth://{end.emulator_port}"
        ns = self.namespaces[node]
        outer, inner = f"hx{self.rid}{k}{side}", f"l{k}{side}"
        run_ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
        run_ip("-n", ns, "addr", "add", address, "dev", inner)
        run_ip("-n", ns, "link", "set", inner, "up")
        run_ip("link", "set", outer, "up")
        offloads_off(ns, inner)
        return f"eth://{outer}"

    def _runtime(self, node: str, eid: str, clas: tuple[ClaConfig, ...], keys: str | None) -> NodeRuntime:
        board = self.boards.get(node)
        if board is None:
            store = os.path.abspath(os.path.join(self.run_dir, "stores", f"{node}.store"))
            return NodeRuntime(
                node,
                eid,
                local_agent_command(("ip", "netns", "exec", self.namespaces[node])),
                clas,
                store,
                keys_path=keys,
            )
        ssh = self.ssh[node]
        agent = ["env", "PYTHONUNBUFFERED=1", venv_bin(board, "hilnet"), "agent", "--stdio"]
        run_dir = f"{remote_path(board.store_dir).rstrip('/')}/{self.run_id}"
        store = f"{run_dir}/{node}.store"
        if keys is not None:
            keys = self._copy_keys(ssh, keys, f"{run_dir}/{node}.keys")

        def kill(pid: int) -> list[str]:
            return ssh.command(["kill", "-KILL", str(pid)])

        where = f"board {board.name} (ssh {board.ssh})"
        return NodeRuntime(node, eid, tuple(ssh.command(agent)), clas, store, kill, where, keys_path=keys)

    @staticmethod
    def _copy_keys(ssh: SshBoard, local: str, remote: str) -> str:
        """Put the key file ``local`` on the board at ``remote`` (0600, in the run's folder); returns ``remote``."""
        with open(local, "rb") as f:
            data = f.read()
        folder = remote.rsplit("/", 1)[0]
        script = f"umask 077 && mkdir -p {shlex.quote(folder)} && cat > {shlex.quote(remote)}"
        p = ssh.run(["sh", "-c", script], data=data)
        if p.returncode != 0:
            raise TestbedError(
                f"board {ssh.name}: cannot write its key file {remote}: {p.stderr.decode(errors='replace').strip()}"
            )
        return remote

    # -- power -------------------------------------------------------------------------

    def power_off(self, node: str) -> None:
        board, power = self._powered(node)
        self._power(board, power.off)
        self.ssh[node].close()  # its connection died with the board

    def power_on(self, node: str) -> None:
        board, power = self._powered(node)
        self._power(board, power.on)
        clock = self.clock
        deadline = clock.now_ns() + int(BOOT_TIMEOUT_S * NS_PER_S)
        while True:
            try:
                self.ssh[node].connect()
                break
            except TestbedError:
                if clock.now_ns() > deadline:
                    raise TestbedError(
                        f"board {board.name} did not answer over SSH within {BOOT_TIMEOUT_S:.0f} s of power-on"
                    ) from None
                clock.sleep_until_ns(clock.now_ns() + NS_PER_S)
        # A board that booted again may have lost an address it was given at build.
        for link, n, end in self.bench.wiring:
            if n == node and isinstance(end, NicEnd):
                self._address(self.ssh[node], board, link, end)

    def _powered(self, node: str) -> tuple[Board, Power]:
        """The board playing ``node`` and its power commands; TestbedError if it has none."""
        board = self.boards[node]
        if board.power is None:  # validation refuses such a power-cut; a hand-built bench may not
            raise TestbedError(f"board {board.name} has no power commands")
        return board, board.power

    @staticmethod
    def _power(board: Board, argv: tuple[str, ...]) -> None:
        try:
            p = subprocess.run(list(argv), capture_output=True, text=True, timeout=POWER_COMMAND_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TestbedError(f"board {board.name}: power command {argv[0]} failed: {e}") from None
        if p.returncode != 0:
            raise TestbedError(
                f"board {board.name}: power command {' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[-300:]}"
            )

    # -- teardown ----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        left: list[str] = []

        def clean(node: str) -> None:
            ssh, board = self.ssh[node], self.boards[node]
            if ssh.alive():
                try:
                    ssh.run(["rm", "-rf", f"{remote_path(board.store_dir).rstrip('/')}/{self.run_id}"], timeout_s=10)
                except TestbedError as e:
                    left.append(f"board {board.name}: stores of this run: {e}")
            ssh.close()

        each(list(self.ssh), clean)
        if self._sockets:
            shutil.rmtree(self._sockets, ignore_errors=True)
        for ns in self.namespaces.values():
            p = run_ip("netns", "del", ns, check=False)
            if p.returncode != 0 and "No such file" not in p.stderr:
                left.append(f"namespace {ns}: {p.stderr.strip()}")
        self.namespaces.clear()
        for ifname in root_links(f"hx{self.rid}"):
            p = run_ip("link", "del", ifname, check=False)
            if p.returncode != 0 and ifname in root_links(ifname):
                left.append(f"interface {ifname}: {p.stderr.strip()}")
        if os.path.exists(self._marker):
            os.unlink(self._marker)
        return left
