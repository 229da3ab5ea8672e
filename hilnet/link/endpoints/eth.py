"""``eth://IFNAME``: every Ethernet frame on one interface, through AF_PACKET.

A raw ``AF_PACKET``/``ETH_P_ALL`` socket is bound to the interface; frames the
host itself sent on it (PACKET_OUTGOING, i.e. the link's own deliveries) are
ignored so nothing is reflected back. The interface is put in promiscuous mode
(a NIC on a bench must pass frames for the boards' MACs, not only its own).

Offloads: with TSO/GSO/GRO a veth or NIC hands the socket 64 KiB "frames" and
partial checksums, which would arrive invalid or be dropped as oversize on
the far side. :func:`disable_offloads` turns them off through the SIOCETHTOOL
ioctl (no ``ethtool`` binary needed); the endpoint calls it on its own
interface, and the netns backend should call it on the agents' interfaces too.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from dataclasses import dataclass

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import (
    CMSG_SPACE_TS,
    ETHERNET,
    READ,
    SCM_TIMESTAMPNS,
    SO_TIMESTAMPNS,
    Endpoint,
    Rx,
    SpecText,
)
from hilnet.link.endpoints.udp import _set_buffers

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
SIOCGIFMTU = 0x8921
SIOCGIFINDEX = 0x8933
SIOCETHTOOL = 0x8946
ETH_HEADER = 14
VLAN_TAG = 4
BUFFER_BYTES = 16 << 20
BATCH = 256

# Legacy ethtool "set" commands (linux/ethtool.h), each taking struct ethtool_value.
_OFFLOADS = {
    "rx-checksum": 0x15,
    "tx-checksum": 0x17,
    "scatter-gather": 0x19,
    "tso": 0x1F,
    "gso": 0x24,
    "gro": 0x2C,
}


@dataclass(frozen=True, slots=True)
class EthSpec:
    """One network interface by name."""

    text: str
    ifname: str
    offloads: bool = False  # True keeps the interface's offloads as they are


def parse(st: SpecText) -> EthSpec:
    opts = st.take({"offloads"})
    name = st.netloc
    if not name or st.path not in ("", "/"):
        raise SpecError(f"{st.text!r}: expected eth://IFNAME, e.g. eth://veth0 or eth://enx00e04c")
    if len(name) > 15 or "/" in name or " " in name:
        raise SpecError(f"{st.text!r}: {name!r} is not a valid interface name (at most 15 characters)")
    keep = opts.get("offloads", "off").lower()
    if keep not in ("on", "off"):
        raise SpecError(f"{st.text!r}: offloads={keep!r}; expected on (leave as is) or off (default)")
    return EthSpec(st.text, name, keep == "on")


def _ifreq(ifname: str, tail: bytes = b"") -> bytes:
    return struct.pack("16s", ifname.encode()) + tail.ljust(24, b"\0")


def interface_mtu(ifname: str) -> int:
    """The interface's MTU in bytes (payload, without the Ethernet header)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFMTU, _ifreq(ifname))
        except OSError as e:
            raise EndpointError(f"eth://{ifname}: no such interface ({e.strerror or e})") from None
    return struct.unpack_from("i", res, 16)[0]


def disable_offloads(ifname: str) -> list[str]:
    """Turn off checksum, segmentation and receive-coalescing offloads on ``ifname``.

    Returns the offloads that could not be changed (the driver lacks them,
    which is fine: then it does not do them either). Needs CAP_NET_ADMIN.
    """
    failed = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name, cmd in _OFFLOADS.items():
            value = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
            req = _ifreq(ifname, struct.pack("P", ctypes.addressof(value)))
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)
            except OSError:
                failed.append(name)
    return failed


class EthEndpoint(Endpoint):
    medium = ETHERNET

    def __init__(self, spec: EthSpec, label: str = ""):
        super().__init__(spec, label or spec.ifname)
        self.mtu = interface_mtu(spec.ifname)
        self.max_unit = self.mtu + ETH_HEADER + VLAN_TAG
        if not spec.offloads:
            self.offloads_left = disable_offloads(spec.ifname)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise EndpointError(f"{spec.text}: raw sockets need root or CAP_NET_RAW") from None
        try:
            sock.bind((spec.ifname, ETH_P_ALL))
            ifindex = socket.if_nametoindex(spec.ifname)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as e:
            sock.close()
            raise EndpointError(f"{spec.text}: cannot bind to {spec.ifname}: {e.strerror or e}") from None
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # Linux >= 4.20; pkttype is checked anyway
        except OSError:
            pass
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _set_buffers(sock, BUFFER_BYTES)
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()

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
            except OSError as e:
                raise EndpointError(f"{self.label}: interface gone or down ({e.strerror or e})") from None
            if addr[2] == PACKET_OUTGOING:
                continue
            t = now_ns
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    t = stamp(cdata, now_ns)
            out.append(Rx(data, t))
        else:
            return out
        if not out and mask & 0x08:  # EPOLLERR with nothing to read: the device went away
            raise EndpointError(f"{self.label}: interface reported an error (deleted?)")
        return out

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        try:
            self.sock.send(data)
        except BlockingIOError:
            self.overruns += 1
        except OSError as e:
            if e.errno in (errno.ENOBUFS, errno.EMSGSIZE, errno.EINVAL):
                self.overruns += 1
            else:
                raise EndpointError(f"{self.label}: interface gone or down ({e.strerror or e})") from None
        return []

    def close(self) -> None:
        if not self.closed:
            self.sock.close()
        super().close()


def open_endpoint(spec: EthSpec, label: str = "") -> EthEndpoint:
    return EthEndpoint(spec, label)
