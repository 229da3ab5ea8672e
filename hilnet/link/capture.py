"""One pcap file per link end, as a tap on that end's wire would see it.

``DIR/<link>.a.pcap`` and ``DIR/<link>.b.pcap`` hold what the agent at that
end sent into the link ("in", stamped with the arrival time) and what the
link delivered to it ("out", stamped with the delivery time). Written with
scapy's pcap writer (nanosecond pcap), which is imported only when a capture
is asked for: scapy takes a noticeable time to import.

What each medium looks like in the file (see docs/link.md):

- ethernet: the frames as they are (LINKTYPE_ETHERNET, 1);
- serial: LINKTYPE_USER0 (147); each record is one direction byte
  (0 = from the device into the link, 1 = from the link to the device)
  followed by the bytes, so in Wireshark ``frame[0]`` tells the direction;
- udp: each datagram wrapped in synthetic Ethernet/IPv4(or v6)/UDP headers
  between the agent's address and the endpoint's address;
- tcp relay: each flow as a synthetic TCP connection (handshake, segments
  with consistent sequence and acknowledgement numbers, FIN) between the
  agent's address and the endpoint's, so Wireshark reassembles the stream
  and, on port 4556, decodes TCPCLv4 and the BPv7 bundles inside.

Timestamps are the engine's monotonic ns moved to wall-clock time by an
offset measured once when the capture starts.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from hilnet.clock import MonotonicClock
from hilnet.errors import EndpointError
from hilnet.link.endpoints.base import DATAGRAM, ETHERNET, SERIAL, STREAM, Endpoint

LINKTYPE_ETHERNET = 1
LINKTYPE_USER0 = 147
SERIAL_IN = 0
SERIAL_OUT = 1
_MAC_AGENT = "02:00:00:00:00:01"
_MAC_LINK = "02:00:00:00:00:02"
MAX_SEGMENT = 65000  # a synthetic TCP segment stays below IP's 64 KiB


@dataclass(slots=True)
class _TcpFlow:
    agent: tuple[str, int]
    local: tuple[str, int]
    agent_is_client: bool
    seq_agent: int  # next sequence number the agent's side sends
    seq_local: int


class EndCapture:
    """The pcap of one link end."""

    def __init__(self, path: str, ep: Endpoint, wall_offset_ns: int):
        from scapy.utils import RawPcapWriter  # lazy: only capturing pays for scapy

        self.ep = ep
        self.path = path
        self.offset = wall_offset_ns
        linktype = LINKTYPE_USER0 if ep.medium == SERIAL else LINKTYPE_ETHERNET
        try:
            self._w = RawPcapWriter(path, linktype=linktype, nano=True, sync=False)
            # write_packet() does not write the file header itself (write() would,
            # but it takes scapy packets); without it the file is not a pcap.
            self._w._write_header(None)
        except OSError as e:
            raise EndpointError(f"cannot write capture {path}: {e.strerror or e}") from None
        self._flows: dict[int, _TcpFlow] = {}
        self._isn = 1000

    def record(self, way: str, data: bytes, tag: object, t_ns: int) -> None:
        medium = self.ep.medium
        if medium == ETHERNET:
            self._write(data, t_ns)
        elif medium == SERIAL:
            self._write(bytes([SERIAL_IN if way == "in" else SERIAL_OUT]) + data, t_ns)
        elif medium == DATAGRAM:
            self._udp(way, data, t_ns)
        elif medium == STREAM:
            self._tcp(way, data, tag, t_ns)

    def close(self) -> None:
        self._w.close()

    # --- inside -------------------------------------------------------------
    def _write(self, frame: bytes, t_ns: int) -> None:
        wall = t_ns + self.offset
        self._w.write_packet(frame, sec=wall // 1_000_000_000, usec=wall % 1_000_000_000)

    def _ip(self, src: tuple, dst: tuple):
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        v6 = ipaddress.ip_address(src[0]).version == 6
        ip = IPv6(src=src[0], dst=dst[0]) if v6 else IP(src=src[0], dst=dst[0])
        return Ether(src=_MAC_AGENT, dst=_MAC_LINK) / ip

    def _udp(self, way: str, data: bytes, t_ns: int) -> None:
        from scapy.layers.inet import UDP

        spec = self.ep.spec
        local = (_numeric(spec.bind[0]), spec.bind[1])
        agent = (_numeric(spec.peer[0]), spec.peer[1])
        if way == "in":
            src, dst = getattr(self.ep, "last_source", None) or agent, local
            src = (_numeric(src[0]), src[1])
        else:
            src, dst = local, agent
        pkt = self._ip(src, dst) / UDP(sport=src[1], dport=dst[1]) / data
        self._write(bytes(pkt), t_ns)

    def _tcp(self, way: str, data: bytes, tag: object, t_ns: int) -> None:
        from hilnet.link.endpoints.tcp import DATA, FIN, OPEN, flow_tag

        fid, kind = flow_tag(tag)
        flow = self._flows.get(fid)
        if kind == OPEN:
            if flow is None:
                flow = self._open(fid, way)
                self._handshake(flow, t_ns)
            return
        if flow is None:
            return
        from_agent = way == "in"
        if kind == DATA:
            for i in range(0, len(data), MAX_SEGMENT):
                self._segment(flow, from_agent, "PA", data[i : i + MAX_SEGMENT], t_ns)
        elif kind == FIN:
            self._segment(flow, from_agent, "FA", b"", t_ns)
            # the FIN takes one sequence number; the other side acknowledges it
            self._segment(flow, not from_agent, "A", b"", t_ns)

    def _open(self, fid: int, way: str) -> _TcpFlow:
        from hilnet.link.endpoints.tcp import TcpEndpoint

        ep = self.ep
        if not isinstance(ep, TcpEndpoint):  # only the TCP relay carries streams
            raise EndpointError(f"cannot capture {ep.label}: a stream that is not a TCP relay")
        f = ep.flows.get(fid)
        listen = (_numeric(ep.listen_addr[0]), ep.listen_addr[1])
        if way == "in":
            # The agent connected to this end.
            agent = (_numeric(f.agent_addr[0]), f.agent_addr[1]) if f else ("127.0.0.1", 1)
            flow = _TcpFlow(agent, listen, True, self._isn, self._isn + 500_000)
        else:
            # This end connects to the agent's listening port. The engine's own
            # ephemeral port is not known before connect() returns; a port
            # derived from the flow id stands in, fixed for the whole flow.
            peer = (_numeric(ep.spec.peer[0]), ep.spec.peer[1])
            local = (listen[0], 30000 + fid % 30000)
            flow = _TcpFlow(peer, local, False, self._isn + 500_000, self._isn)
        self._isn += 1_000_003
        self._flows[fid] = flow
        return flow

    def _handshake(self, flow: _TcpFlow, t_ns: int) -> None:
        client_is_agent = flow.agent_is_client
        self._segment(flow, client_is_agent, "S", b"", t_ns, syn=True)
        self._segment(flow, not client_is_agent, "SA", b"", t_ns, syn=True)
        self._segment(flow, client_is_agent, "A", b"", t_ns)

    def _segment(self, flow: _TcpFlow, from_agent: bool, flags: str, data: bytes, t_ns: int, syn: bool = False) -> None:
        from scapy.layers.inet import TCP

        if from_agent:
            src, dst, seq, ack = flow.agent, flow.local, flow.seq_agent, flow.seq_local
        else:
            src, dst, seq, ack = flow.local, flow.agent, flow.seq_local, flow.seq_agent
        tcp = TCP(
            sport=src[1],
            dport=dst[1],
            flags=flags,
            seq=seq & 0xFFFFFFFF,
            ack=(ack & 0xFFFFFFFF) if "A" in flags else 0,
            window=65535,
        )
        pkt = self._ip(src, dst) / tcp / data if data else self._ip(src, dst) / tcp
        step = len(data) + (1 if syn or "F" in flags else 0)
        if from_agent:
            flow.seq_agent += step
        else:
            flow.seq_local += step
        self._write(bytes(pkt), t_ns)


def _numeric(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return "127.0.0.1" if host == "localhost" else "0.0.0.0"


class LinkCapture:
    """The two pcaps of one link: ``DIR/<link>.a.pcap`` and ``DIR/<link>.b.pcap``."""

    def __init__(self, directory: str, link: str, a: Endpoint, b: Endpoint):
        os.makedirs(directory, exist_ok=True)
        offset = MonotonicClock.realtime_offset_ns()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in link)
        self.paths = {end: os.path.join(directory, f"{safe}.{end}.pcap") for end in "ab"}
        self.ends = {"a": EndCapture(self.paths["a"], a, offset), "b": EndCapture(self.paths["b"], b, offset)}

    def record(self, end: str, way: str, data: bytes, tag: object, t_ns: int) -> None:
        """Record a unit at ``end`` ("a"/"b"), ``way`` "in" (from the agent) or "out" (to it)."""
        self.ends[end].record(way, data, tag, t_ns)

    def close(self) -> None:
        for c in self.ends.values():
            c.close()
