"""An emulated bench on one Linux host (root): the boards of a bench file as namespaces with real sshd.

Built from the bench file itself, so the file is the one truth:

- each board: a network namespace ``hbemu-N`` with a management veth
  (``hbmN`` here, ``mgmt0`` there, 10.78.N+1.1/30 <-> .2/30) and its own
  OpenSSH server (Debian's ``sshd``, its own host key and config, listening
  only on the namespace's address), reached as the bench's ``ssh:`` name
  through an ssh_config file at the bench's ``ssh-config:`` path, with a
  user key and known_hosts made here;
- each ``nic:`` end: a veth pair, the board's side in its namespace under the
  board's name (``eth1``), the emulator's side here under the bench's name;
- each ``uart:`` end: two pty pairs joined by a null modem
  (``nullmodem.py``), one side linked at the board's UART path, the other at
  the emulator's device path, or, for an ``rfc2217://`` port, served by a
  real ``ser2net``.

:meth:`down` removes everything :meth:`up` made, and :meth:`leftovers` says
what is still there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hilnet.bench.load import load_bench
from hilnet.bench.model import NicEnd, UartEnd
from hilnet.link.endpoints.eth import disable_offloads
from hilnet.testbed.netns import offloads_off

HERE = Path(__file__).parent
ROOT = "/var/tmp/hilnet-emubench"
WHEELHOUSE = Path(ROOT + "-wheels")  # outside ROOT: EmulatedBench.up() starts from an empty ROOT
NS_PREFIX = "hbemu-"
TOOLS = ("ip", "ssh", "ssh-keygen", "/usr/sbin/sshd", "ser2net")


def unavailable() -> str | None:
    """Why the emulated bench cannot be built here, or None."""
    if not sys.platform.startswith("linux"):
        return "the emulated bench needs Linux"
    if os.geteuid() != 0:
        return "the emulated bench needs root (network namespaces, sshd)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"the emulated bench needs {', '.join(missing)} (Debian: openssh-server, ser2net, iproute2)"
    return None


def make_wheelhouse() -> None:
    """hilnet's dependencies as wheels for this host's platform (the boards share it) in WHEELHOUSE.

    The boards are namespaces with no route out, so ``hilnet bench install
    --wheelhouse`` brings them their dependencies. The caller removes it.
    """
    import tomllib

    deps = tomllib.loads((HERE.parent.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    WHEELHOUSE.mkdir(exist_ok=True)
    p = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(WHEELHOUSE), *deps],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if p.returncode != 0:
        raise RuntimeError(f"cannot download hilnet's dependencies: {p.stderr.strip()[-500:]}")


def _run(*argv: str) -> str:
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {p.stderr.strip()}")
    return p.stdout


class EmulatedBench:
    def __init__(self, bench_path: str | os.PathLike[str]):
        self.path = str(bench_path)
        self.bench = load_bench(bench_path, check_host=False)
        self.ns: dict[str, str] = {}  # board -> namespace
        self.addr: dict[str, str] = {}  # board -> management address
        self.sshd: dict[str, subprocess.Popen] = {}
        self.procs: list[subprocess.Popen] = []  # null modem, ser2net
        self.outer: list[str] = []  # interfaces made here in the root namespace

    # -- up ------------------------------------------------------------------------

    def up(self) -> None:
        self.down()  # what a killed test session may have left
        os.makedirs(f"{ROOT}/emu", mode=0o700)
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hilnet-emubench", "-f", f"{ROOT}/id_ed25519")
        shutil.copy(f"{ROOT}/id_ed25519.pub", f"{ROOT}/authorized_keys")
        known, config = [], []
        for i, board in enumerate(self.bench.boards):
            known.append(self._board(i, board.name))
            config += [f"Host {board.ssh}", f"    HostName {self.addr[board.name]}"]
        config += [
            "Host *",
            "    User root",
            f"    IdentityFile {ROOT}/id_ed25519",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {ROOT}/known_hosts",
            "    StrictHostKeyChecking yes",
            "    LogLevel ERROR",
        ]
        Path(f"{ROOT}/known_hosts").write_text("\n".join(known) + "\n")
        Path(self.bench.ssh_config or f"{ROOT}/ssh_config").write_text("\n".join(config) + "\n")
        self._wire()
        for name in self.ns:
            self._wait_listening(name)

    def _board(self, i: int, name: str) -> str:
        """Namespace, management veth and sshd of one board; returns its known_hosts line."""
        ns, outer, here = f"{NS_PREFIX}{i}", f"hbm{i}", f"{ROOT}/{name}"
        os.makedirs(here)
        _run("ip", "netns", "add", ns)
        self.ns[name] = ns
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", "mgmt0", "netns", ns)
        self.outer.append(outer)
        self.addr[name] = f"10.78.{i + 1}.2"
        _run("ip", "addr", "add", f"10.78.{i + 1}.1/30", "dev", outer)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "-n", ns, "addr", "add", f"10.78.{i + 1}.2/30", "dev", "mgmt0")
        _run("ip", "-n", ns, "link", "set", "mgmt0", "up")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{here}/host_key")
        Path(f"{here}/sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {self.addr[name]}",
                    "Port 22",
                    f"HostKey {here}/host_key",
                    f"PidFile {here}/sshd.pid",
                    f"AuthorizedKeysFile {ROOT}/authorized_keys",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PrintMotd no",
                    "MaxSessions 50",
                    "MaxStartups 50",
                ]
            )
            + "\n"
        )
        self.start_sshd(name)
        key = Path(f"{here}/host_key.pub").read_text().split()
        return f"{self.addr[name]} {key[0]} {key[1]}"

    def start_sshd(self, name: str) -> None:
        self.sshd[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], "/usr/sbin/sshd", "-D", "-e", "-f", f"{ROOT}/{name}/sshd_config"],
            stdout=subprocess.DEVNULL,
            stderr=open(f"{ROOT}/{name}/sshd.log", "ab"),
        )

    def _wait_listening(self, name: str, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.addr[name], 22), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd of {name} did not listen within {timeout_s} s; see {ROOT}/{name}/sshd.log")

    def _wire(self) -> None:
        pairs: list[str] = []
        served: list[tuple[int, str]] = []  # (port, ser2net connection)
        for link, node, end in self.bench.wiring:
            board = dict(self.bench.nodes)[node]
            if isinstance(end, NicEnd):
                ns = self.ns[board]
                _run(
                    "ip", "link", "add", end.emulator_port, "type", "veth", "peer", "name", end.board_port, "netns", ns
                )
                self.outer.append(end.emulator_port)
                _run("ip", "link", "set", end.emulator_port, "up")
                _run("ip", "-n", ns, "link", "set", end.board_port, "up")
                offloads_off(ns, end.board_port)  # a real NIC puts MTU-sized frames on the wire
                disable_offloads(end.emulator_port)  # as a lab does to its emulator NICs (hilnet doctor says so)
            elif isinstance(end, UartEnd):
                far = end.emulator_port
                if far.startswith("rfc2217://"):
                    port = int(far.rsplit(":", 1)[1])
                    far = f"{ROOT}/emu/{link}.{node}"
                    served.append(
                        (
                            port,
                            f"connection: &c{port}\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
                            f"  connector: serialdev,{far},115200n81,local\n  options:\n    kickolduser: true\n",
                        )
                    )
                pairs += [end.board_port, far]
        if pairs:
            modem = subprocess.Popen([sys.executable, str(HERE / "nullmodem.py"), *pairs], stdout=subprocess.PIPE)
            self.procs.append(modem)
            assert modem.stdout is not None and modem.stdout.readline().strip() == b"ready"
        if served:
            Path(f"{ROOT}/ser2net.yaml").write_text("".join(text for _, text in served))
            self.procs.append(
                subprocess.Popen(
                    ["ser2net", "-n", "-u", "-c", f"{ROOT}/ser2net.yaml", "-P", f"{ROOT}/ser2net.pid"],
                    stdout=subprocess.DEVNULL,
                    stderr=open(f"{ROOT}/ser2net.log", "ab"),
                )
            )
            for port, _ in served:
                _wait_port("127.0.0.1", port)

    # -- faults --------------------------------------------------------------------

    def kill_sshd(self, name: str) -> None:
        """The board vanishes: its sshd and every session it carries die at once (kill -9).

        Every sshd of the board, not only the one started here: its power-on
        command starts one of its own.
        """
        config = f"{ROOT}/{name}/sshd_config".encode()
        roots = [pid for pid in _ours() if config in _cmdline(pid)]
        for root in roots:
            for pid in [*_descendants(root), root]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.sshd[name].wait()

    # -- down ----------------------------------------------------------------------

    def down(self) -> None:
        for p in self.procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        for name in list(self.sshd):
            self.kill_sshd(name)
        self.sshd.clear()
        for pid in _ours():  # what a killed test session left running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for ns in _namespaces():
            for pid in _run("ip", "netns", "pids", ns).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for ifname in self.outer + _links(("hbm", "hbe-")):
            subprocess.run(["ip", "link", "del", ifname], capture_output=True)
        self.outer.clear()
        self.ns.clear()
        shutil.rmtree(ROOT, ignore_errors=True)

    def leftovers(self) -> list[str]:
        left = [f"namespace {ns}" for ns in _namespaces()]
        left += [f"interface {i}" for i in _links(("hbm", "hbe-"))]
        if os.path.exists(ROOT):
            left.append(ROOT)
        left += [f"process {pid}" for pid in _ours()]
        return left


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _ours() -> list[int]:
    """Processes whose command line names the emulated bench's folder (sshd, ser2net, null modem, agents)."""
    pids = (int(p) for p in os.listdir("/proc") if p.isdigit())
    return [pid for pid in pids if pid != os.getpid() and ROOT.encode() in _cmdline(pid)]


def _wait_port(host: str, port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout_s} s; see {ROOT}/ser2net.log")


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [w.split()[0] for w in out.splitlines() if w.startswith(NS_PREFIX)]


def _links(prefixes: tuple[str, ...]) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(prefixes)]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
