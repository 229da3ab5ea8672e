"""``udp://BIND_HOST:PORT?peer=HOST:PORT``: datagrams, one unit each.

A datagram received on one end's bind address goes through the link and
leaves from the OTHER end's socket towards that end's ``peer``. So two agents
that each talk to "their" end of the link see each other's datagrams, with the
emulator's address as the source. Arrival times are kernel receive stamps
(SO_TIMESTAMPNS). A datagram the OS will not take (full send buffer, ICMP
unreachable) is dropped and counted, as the network would.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import (
    CMSG_SPACE_TS,
    DATAGRAM,
    READ,
    SCM_TIMESTAMPNS,
    SO_TIMESTAMPNS,
    Endpoint,
    Rx,
    SpecText,
    parse_host_port,
    resolve,
)

MAX_DATAGRAM = 65507  # IPv4 UDP payload limit
BUFFER_BYTES = 8 << 20
BATCH = 256  # datagrams per wake before the loop looks at deadlines again


@dataclass(frozen=True, slots=True)
class UdpSpec:
    """Bind here; send what the link delivers to ``peer``."""

    text: str
    bind: tuple[str, int]
    peer: tuple[str, int]


def parse(st: SpecText) -> UdpSpec:
    opts = st.take({"peer"})
    if st.path not in ("", "/"):
        raise SpecError(f"{st.text!r}: unexpected path {st.path!r}; expected udp://HOST:PORT?peer=HOST:PORT")
    bind = parse_host_port(st.netloc, "bind address", st.text)
    if "peer" not in opts:
        raise SpecError(f"{st.text!r}: missing ?peer=HOST:PORT (where this end sends what the link delivers)")
    return UdpSpec(st.text, bind, parse_host_port(opts["peer"], "peer", st.text))


def _set_buffers(sock: socket.socket, size: int) -> None:
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # SO_RCVBUFFORCE / SO_SNDBUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)  # root may pass net.core.*mem_max
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)


class UdpEndpoint(Endpoint):
    medium = DATAGRAM
    max_unit = MAX_DATAGRAM

    def __init__(self, spec: UdpSpec, label: str = ""):
        super().__init__(spec, label or f"udp:{spec.bind[0]}:{spec.bind[1]}")
        family, bind_addr = resolve(*spec.bind, spec.text)
        _, self.peer_addr = resolve(*spec.peer, spec.text)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind(bind_addr)
        except OSError as e:
            self.sock.close()
            raise EndpointError(f"{spec.text}: cannot bind {spec.bind[0]}:{spec.bind[1]}: {e.strerror or e}") from None
        self.sock.setblocking(False)
        _set_buffers(self.sock, BUFFER_BYTES)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.fd = self.sock.fileno()
        self.local_addr = self.sock.getsockname()
        self.last_source: tuple | None = None

    def interest(self, reading: bool) -> dict[int, int]:
        return {self.fd: READ if reading else 0}

    def on_ready(self, fd: int, mask: int, now_ns: int) -> list[Rx]:
        out = []
        recvmsg = self.sock.recvmsg
        stamp = self.stamper.from_timespec
        for _ in range(BATCH):
            try:
                data, anc, flags, addr = recvmsg(65536, CMSG_SPACE_TS)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                continue  # an earlier send met ICMP port unreachable; not this socket's fault
            except OSError as e:
                raise EndpointError(f"{self.label}: receive failed: {e.strerror or e}") from None
            t = now_ns
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    t = stamp(cdata, now_ns)
            self.last_source = addr
            out.append(Rx(data, t))
        return out

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        try:
            self.sock.sendto(data, self.peer_addr)
        except (BlockingIOError, ConnectionRefusedError):
            self.overruns += 1
        except OSError as e:
            if e.errno in (errno.EMSGSIZE, errno.ENOBUFS, errno.EHOSTUNREACH, errno.ENETUNREACH):
                self.overruns += 1
            else:
                raise EndpointError(f"{self.label}: send failed: {e.strerror or e}") from None
        return []

    def close(self) -> None:
        if not self.closed:
            self.sock.close()
        super().close()


def open_endpoint(spec: UdpSpec, label: str = "") -> UdpEndpoint:
    return UdpEndpoint(spec, label)
