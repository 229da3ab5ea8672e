"""Agent-side harnesses for every endpoint kind, for the conformance suite and benchmarks.

A harness builds what the two agents of a link would have (pty paths, UDP
sockets, a TCP server and client, raw sockets in network namespaces behind
veth pairs), gives the engine its two endpoint specs, and lets a test send
bytes into end ``"a"`` or ``"b"`` and read what comes out of the other.
Datagram kinds (udp, eth) carry each ``send`` as one unit.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import subprocess
import threading
import time
import tty
import uuid

ETHERTYPE = 0x88B5  # IEEE local experimental: nothing else on the veth uses it
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Harness:
    kind = ""
    datagrams = False
    header_bytes = 0  # bytes the link carries per send beyond the payload

    def specs(self) -> tuple[str, str]:
        raise NotImplementedError

    def connect(self) -> None:
        """Called once the engine runs (agents open their side now)."""

    def send(self, end: str, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, end: str, nbytes: int, timeout: float) -> bytes:
        """Read until ``nbytes`` arrived or ``timeout`` s passed; returns what came."""
        raise NotImplementedError

    def recv_times(self, end: str, nbytes: int, timeout: float) -> list[tuple[float, int]]:
        """Like recv but returns (monotonic s, bytes) per read, for timing checks."""
        out = []
        got = 0
        deadline = time.monotonic() + timeout
        while got < nbytes and time.monotonic() < deadline:
            chunk = self.recv(end, nbytes - got, min(0.05, max(0.0, deadline - time.monotonic())))
            if chunk:
                out.append((time.monotonic(), len(chunk)))
                got += len(chunk)
        return out

    def close(self) -> None:
        pass


def _read_fd(fd: int, nbytes: int, timeout: float, reader) -> bytes:
    buf = bytearray()
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(buf) < nbytes:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if not poller.poll(left * 1000):
            break
        chunk = reader(nbytes - len(buf))
        if chunk is None:
            continue
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class PtyHarness(Harness):
    kind = "pty"

    def __init__(self, tmp_path):
        self.paths = {"a": str(tmp_path / "a.tty"), "b": str(tmp_path / "b.tty")}
        self.fds: dict[str, int] = {}

    def specs(self):
        return f"pty://{self.paths['a']}", f"pty://{self.paths['b']}"

    def connect(self):
        for end, path in self.paths.items():
            for _ in range(100):
                if os.path.exists(path):
                    break
                time.sleep(0.01)
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(fd)
            self.fds[end] = fd

    def send(self, end, data):
        fd = self.fds[end]
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [], 0.1)
                continue
            view = view[n:]

    def recv(self, end, nbytes, timeout):
        fd = self.fds[end]

        def reader(n):
            try:
                return os.read(fd, n)
            except BlockingIOError:
                return None

        return _read_fd(fd, nbytes, timeout, reader)

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


class UdpHarness(Harness):
    kind = "udp"
    datagrams = True

    def __init__(self, tmp_path=None):
        self.socks = {}
        self.engine_port = {}
        for end in "ab":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            s.setblocking(False)
            self.socks[end] = s
            self.engine_port[end] = free_port()

    def specs(self):
        a = f"udp://127.0.0.1:{self.engine_port['a']}?peer=127.0.0.1:{self.socks['a'].getsockname()[1]}"
        b = f"udp://127.0.0.1:{self.engine_port['b']}?peer=127.0.0.1:{self.socks['b'].getsockname()[1]}"
        return a, b

    def send(self, end, data):
        self.socks[end].sendto(data, ("127.0.0.1", self.engine_port[end]))

    def recv(self, end, nbytes, timeout):
        s = self.socks[end]

        def reader(n):
            try:
                return s.recv(65536)
            except BlockingIOError:
                return None

        return _read_fd(s.fileno(), nbytes, timeout, reader)

    def close(self):
        for s in self.socks.values():
            s.close()


class TcpHarness(Harness):
    """Agent a connects to its end; agent b's server accepts the relayed connection."""

    kind = "tcp"

    def __init__(self, tmp_path=None):
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.engine_port = {"a": free_port(socket.SOCK_STREAM), "b": free_port(socket.SOCK_STREAM)}
        # b's end never gets connections in these tests; its peer is a closed port.
        self.socks: dict[str, socket.socket] = {}

    def specs(self):
        a = f"tcp://127.0.0.1:{self.engine_port['a']}?peer=127.0.0.1:{free_port(socket.SOCK_STREAM)}"
        b = f"tcp://127.0.0.1:{self.engine_port['b']}?peer=127.0.0.1:{self.server.getsockname()[1]}"
        return a, b

    def connect(self, accept: bool = True):
        c = socket.create_connection(("127.0.0.1", self.engine_port["a"]), timeout=2)
        c.setblocking(False)
        self.socks["a"] = c
        if accept:
            self.accept()

    def accept(self, timeout: float = 2.0):
        self.server.settimeout(timeout)
        s, _ = self.server.accept()
        s.setblocking(False)
        self.socks["b"] = s

    def send(self, end, data):
        self.socks[end].setblocking(True)
        self.socks[end].sendall(data)
        self.socks[end].setblocking(False)

    def recv(self, end, nbytes, timeout):
        s = self.socks[end]

        def reader(n):
            try:
                return s.recv(n)
            except BlockingIOError:
                return None

        return _read_fd(s.fileno(), nbytes, timeout, reader)

    def close(self):
        for s in self.socks.values():
            s.close()
        self.server.close()


def _libc():
    return ctypes.CDLL("libc.so.6", use_errno=True)


def in_netns(ns: str, fn):
    """Run ``fn()`` on a thread that joined network namespace ``ns``; returns its result.

    Sockets made there stay in that namespace after the thread ends.
    """
    result = {}

    def body():
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def netns_available() -> str | None:
    """None when veth/netns tests can run here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, raw sockets)"
    if not os.path.exists("/usr/sbin/ip") and not os.path.exists("/sbin/ip") and not os.path.exists("/bin/ip"):
        return "needs iproute2 (ip)"
    probe = f"h5p{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"cannot create network namespaces: {e}"
    return None


class EthHarness(Harness):
    """ns_a:ha <-veth-> ea (engine) ... eb (engine) <-veth-> ns_b:hb.

    Names carry a per-test unique prefix; :meth:`close` deletes the namespaces,
    which deletes the veth pairs with them, even after a failed test.
    """

    kind = "eth"
    datagrams = True
    header_bytes = 14

    def __init__(self, tmp_path=None):
        tag = uuid.uuid4().hex[:6]
        self.prefix = f"h5{tag}"
        self.ns = {"a": f"{self.prefix}na", "b": f"{self.prefix}nb"}
        self.host_if = {"a": f"{self.prefix}ha", "b": f"{self.prefix}hb"}
        self.emu_if = {"a": f"{self.prefix}ea", "b": f"{self.prefix}eb"}
        self.socks: dict[str, socket.socket] = {}
        self.mac = {"a": bytes.fromhex("02aa00000001"), "b": bytes.fromhex("02bb00000002")}
        self._made: list[str] = []
        try:
            for end in "ab":
                ns, h, e = self.ns[end], self.host_if[end], self.emu_if[end]
                _ip("netns", "add", ns)
                self._made.append(ns)
                _ip("link", "add", e, "type", "veth", "peer", "name", h)
                self._made.append("if:" + e)
                _ip("link", "set", h, "netns", ns)
                for path in (f"/proc/sys/net/ipv6/conf/{e}/disable_ipv6",):
                    with open(path, "w") as f:
                        f.write("1")
                _ip("-n", ns, "link", "set", h, "address", self.mac[end].hex(":"))
                subprocess.run(
                    ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{h}.disable_ipv6=1"],
                    check=False,
                    capture_output=True,
                )
                _ip("-n", ns, "link", "set", h, "up")
                _ip("link", "set", e, "up")
        except BaseException:
            self.close()
            raise

    def specs(self):
        return f"eth://{self.emu_if['a']}", f"eth://{self.emu_if['b']}"

    def connect(self):
        for end in "ab":
            ifname = self.host_if[end]

            def make(ifname=ifname):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((ifname, 0))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                s.setblocking(False)
                return s

            self.socks[end] = in_netns(self.ns[end], make)

    def frame(self, end: str, payload: bytes) -> bytes:
        other = "b" if end == "a" else "a"
        return self.mac[other] + self.mac[end] + ETHERTYPE.to_bytes(2, "big") + payload

    def send(self, end, data):
        self.socks[end].send(self.frame(end, data))

    def recv(self, end, nbytes, timeout):
        s = self.socks[end]

        def reader(n):
            while True:
                try:
                    data, addr = s.recvfrom(65536)
                except BlockingIOError:
                    return None
                if addr[2] == PACKET_OUTGOING or data[12:14] != ETHERTYPE.to_bytes(2, "big"):
                    continue  # our own sends and kernel chatter
                return data[14:]

        return _read_fd(s.fileno(), nbytes, timeout, reader)

    def delete_emulator_if(self, end: str) -> None:
        _ip("link", "del", self.emu_if[end])

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks.clear()
        for item in reversed(self._made):
            if item.startswith("if:"):
                subprocess.run(["ip", "link", "del", item[3:]], capture_output=True)
            else:
                subprocess.run(["ip", "netns", "del", item], capture_output=True)
        self._made.clear()


class Rfc2217Harness(PtyHarness):
    """End a is a UART served by a real ser2net (RFC 2217): the engine dials it; the agent has the pty it serves.

    The harness holds the master of a pty pair whose slave ser2net opens, so
    what the harness writes at "a" reaches the engine over telnet and back.
    End b is a plain pty, as in :class:`PtyHarness`.
    """

    kind = "rfc2217"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        del self.paths["a"]  # end a is the served pty's master, held from the start
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self.served = str(tmp_path / "served.tty")
        os.symlink(os.ttyname(slave), self.served)
        os.close(slave)  # ser2net opens it; holding it here would keep bytes from it
        os.set_blocking(master, False)
        self.master = master
        self.port = free_port(socket.SOCK_STREAM)
        config = tmp_path / "ser2net.yaml"
        config.write_text(
            f"connection: &a\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{self.port}\n"
            f"  connector: serialdev,{self.served},115200n81,local\n"
        )
        self.server = subprocess.Popen(
            ["ser2net", "-n", "-u", "-c", str(config), "-P", str(tmp_path / "ser2net.pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("ser2net did not listen within 5 s") from None
                time.sleep(0.02)
        # That probe connection was ser2net's first client; let it see the hang-up first.
        time.sleep(0.1)

    def specs(self):
        return f"rfc2217://127.0.0.1:{self.port}?baud=115200", f"pty://{self.paths['b']}"

    def connect(self):
        super().connect()
        self.fds["a"] = self.master

    def close(self):
        self.fds.pop("a", None)
        super().close()
        os.close(self.master)
        self.server.terminate()
        self.server.wait(5)


def ser2net_available() -> str | None:
    """Why the rfc2217 endpoint cannot be tested against a real ser2net here, or None."""
    import shutil

    return None if shutil.which("ser2net") else "ser2net is not installed (Debian package ser2net)"


KINDS = {"pty": PtyHarness, "udp": UdpHarness, "tcp": TcpHarness, "eth": EthHarness, "rfc2217": Rfc2217Harness}
