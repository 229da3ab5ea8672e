"""MTCP convergence layer: bundles as CBOR byte strings on TCP, as µD3TN and dtn7 speak it.

Each bundle is one CBOR byte string (major type 2, definite length: a head of
1, 2, 3, 5 or 9 octets, then the bundle) written back to back on a TCP
connection. There is no handshake, no node id and no acknowledgement.

What ``send()`` promises, and what it cannot: it returns once every octet of
the bundle was written *and acknowledged by the peer host's TCP stack*
(Linux ``SIOCOUTQ`` reaches 0; elsewhere only once the local kernel took the
octets). That survives a link cut after the return, but not a crash of the
peer process before it read the octets, nor a full store at the peer (MTCP
cannot refuse: such a bundle is counted ``dropped_store_full`` there, one the
agent failed on ``dropped_sink_bug``, and it is lost). Use TCPCLv4 where
"nothing lost" must hold; MTCP is for interop.

Classes of service: MTCP cannot interleave bundles on its stream, so a bundle
is written whole and the next one waits for it; which one is next is decided
by rank (:class:`~hilnet.agent.cla.turns.RankedTurns`), and one is written only
once the previous one left the process (drain), so an expedited bundle does
not queue behind every bulk bundle the agent handed over, only behind the one
being written.

The receiving side (:class:`MtcpDecoder`) is sans-I/O and bounded: a head
that is not a definite-length byte string, or one longer than
``max_bundle`` bytes, is counted under a reason and the connection closed.
The agent's limits (:mod:`~hilnet.agent.cla.limits`) close a connection too:
when its bundle's octets would pass the memory budget shared by all
connections, or when it stays silent for ``idle_timeout_s`` between bundles
or ``partial_timeout_s`` inside one.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import sys
import termios
from collections.abc import Mapping

from hilnet.agent.cla.base import deliver_to_sink
from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.limits import Resources
from hilnet.agent.cla.tcp_base import TcpClaBase, read_within
from hilnet.agent.cla.turns import RankedTurns
from hilnet.bundle.cos import DEFAULT_RANK
from hilnet.clock import Clock
from hilnet.errors import ClaError, WireError

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
_HEAD_SIZES = {24: 1, 25: 2, 26: 4, 27: 8}  # CBOR additional info -> length octets


def mtcp_head(length: int) -> bytes:
    """The CBOR byte-string head for ``length`` bytes (shortest form, RFC 8949 4.2.1)."""
    if length < 24:
        return bytes((0x40 | length,))
    if length < 1 << 8:
        return struct.pack("!BB", 0x58, length)
    if length < 1 << 16:
        return struct.pack("!BH", 0x59, length)
    if length < 1 << 32:
        return struct.pack("!BI", 0x5A, length)
    return struct.pack("!BQ", 0x5B, length)


class MtcpDecoder:
    """Splits an MTCP byte stream into bundles; ``max_bundle`` bounds each (bytes)."""

    def __init__(self, max_bundle: int, holding: Holding | None = None):
        self.max_bundle = max_bundle
        self.holding = holding or Holding(None)  # the partial bundle's share of the agent's memory budget
        self._head = bytearray()
        self._body: bytearray | None = None
        self._left = 0

    @property
    def idle(self) -> bool:
        """True between bundles: a connection closing now cut nothing short."""
        return not self._head and self._body is None

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Octets in order; returns the bundles they complete. Raises WireError."""
        out: list[bytes] = []
        mv = memoryview(data)
        pos, n = 0, len(mv)
        while pos < n:
            if self._body is not None:
                take = min(self._left, n - pos)
                if not self.holding.grow(take):
                    raise WireError("memory_budget", f"a bundle of {len(self._body) + self._left} bytes")
                self._body += mv[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    out.append(bytes(self._body))
                    self._body = None
                    self.holding.release()
                continue
            self._head.append(mv[pos])
            pos += 1
            length = self._parse_head()
            if length is None:
                continue
            self._head.clear()
            if length == 0:
                out.append(b"")
            else:
                self._body = bytearray()
                self._left = length
        return out

    def _parse_head(self) -> int | None:
        first = self._head[0]
        major, info = first >> 5, first & 0x1F
        if major != 2:
            raise WireError("not_a_byte_string", f"CBOR major type {major} (head 0x{first:02x}), expected 2")
        if info == 31:
            raise WireError("indefinite_length", "indefinite-length byte string")
        if info > 27:
            raise WireError("reserved_additional_info", f"CBOR additional info {info}")
        if info < 24:
            length = info
        else:
            size = _HEAD_SIZES[info]
            if len(self._head) < 1 + size:
                return None
            length = int.from_bytes(self._head[1 : 1 + size], "big")
        if length > self.max_bundle:
            raise WireError("bundle_too_big", f"{length} bytes, limit {self.max_bundle}")
        return length


def _unacked_octets(writer: asyncio.StreamWriter) -> int | None:
    """Octets the peer's TCP has not acknowledged yet (Linux), or None if unknown."""
    sock = writer.get_extra_info("socket")
    if sock is None or not sys.platform.startswith("linux"):
        return None
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # == SIOCOUTQ on Linux
    except (OSError, ValueError):  # ValueError: the socket is already closed (fd -1)
        return None
    return struct.unpack("i", buf)[0]


class _Out:
    """Our connection to one configured peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.closed = asyncio.Event()
        self.unacked_at_close: int | None = None  # octets the peer never acknowledged
        self.turns = RankedTurns()  # who writes the next bundle


class MtcpCla(TcpClaBase):
    """MTCP convergence layer: a listener for bundles and a sender per configured peer.

    ``listen`` is ``(host, port)`` or None; ``peers`` maps node ids to the
    ``(host, port)`` of their MTCP listeners (µD3TN's default is 4224).
    ``max_bundle`` bounds received bundles (bytes); ``send_timeout_s`` is how
    long a send may wait for the peer's TCP acknowledgements before the
    connection is dropped and the send fails.
    """

    _connect_limit = 1 << 16  # asyncio's default: an MTCP listener sends us nothing to buffer
    acknowledges = False  # MTCP has no acknowledgement: a send is "sent", never "acked"

    def __init__(
        self,
        node_id: str,
        listen: tuple[str, int] | None = ("0.0.0.0", 4224),
        peers: Mapping[str, tuple[str, int]] | None = None,
        clock: Clock | None = None,
        max_bundle: int = 256 << 20,
        send_timeout_s: float = 30.0,
        name: str = "mtcp",
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 10.0,
        poll_s: float = 0.001,
        resources: Resources | None = None,
    ):
        super().__init__(node_id, listen, peers, clock, name, reconnect_min_s, reconnect_max_s, 10.0, resources)
        self.max_bundle = max_bundle
        self.send_timeout_ns = int(send_timeout_s * NS_PER_S)
        self.poll_ns = int(poll_s * NS_PER_S)
        self._out: dict[str, _Out] = {}

    def peers_up(self) -> set[str]:
        """Configured peers we hold a TCP connection to (MTCP has no session to ask)."""
        return {peer for peer, out in self._out.items() if not out.closed.is_set()}

    async def send(self, peer: str, data: bytes, *, rank: int = DEFAULT_RANK) -> None:
        """Write one bundle; returns when the peer's TCP acknowledged all of it (see module doc).

        Bundles waiting to be written go by ``rank`` (class of service), highest first.
        """
        out = self._out.get(peer)
        if out is None or out.closed.is_set():
            raise ClaError(f"no MTCP connection to {peer}")
        deadline = self.clock.now_ns() + self.send_timeout_ns
        try:
            await asyncio.wait_for(self._write(out, data, rank), self.send_timeout_ns / NS_PER_S)
            while True:
                left = out.unacked_at_close if out.closed.is_set() else _unacked_octets(out.writer)
                if left == 0:
                    break  # the peer's TCP has every octet (a close right after is fine)
                if out.closed.is_set():
                    raise ClaError(f"MTCP connection to {peer} closed before the peer acknowledged the bundle")
                if left is None:
                    break  # not knowable here: drain() is all the guarantee there is
                if self.clock.now_ns() >= deadline:
                    raise TimeoutError
                await self.clock.wait_until_ns(self.clock.now_ns() + self.poll_ns)
        except (TimeoutError, ConnectionError, OSError) as exc:
            self._drop(peer, out)
            raise ClaError(f"MTCP send to {peer} failed: {exc!r}") from None
        self.stats["bundles_sent"] += 1

    # --- internals -------------------------------------------------------------

    async def _write(self, out: _Out, data: bytes, rank: int) -> None:
        await out.turns.acquire(rank)
        try:
            if out.closed.is_set():
                raise ConnectionError("the connection closed while the bundle waited its turn")
            out.writer.write(mtcp_head(len(data)))
            out.writer.write(data)
            await out.writer.drain()
        finally:
            out.turns.release()

    async def _close_connections(self) -> None:
        for out in list(self._out.values()):
            out.writer.close()  # FIN after the queued octets: a clean end for the peer's decoder

    def _drop(self, peer: str, out: _Out) -> None:
        if not out.closed.is_set():
            out.unacked_at_close = _unacked_octets(out.writer)
        out.closed.set()
        out.writer.transport.abort()
        if self._out.get(peer) is out:
            del self._out[peer]
            self.sink.session_changed(self.name, peer, False, {"reason": "connection lost"})

    async def _run_outgoing(
        self, peer: str, addr: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        out = _Out(reader, writer)
        self._out[peer] = out
        self.sink.session_changed(self.name, peer, True, {"address": f"{addr[0]}:{addr[1]}"})
        try:
            # An MTCP listener sends nothing; EOF (or an error) means the connection is gone.
            while await reader.read(65536):
                self.stats["unexpected_data_from_peer"] += 1
        except (ConnectionError, OSError):
            pass
        self._drop(peer, out)
        return True  # it connected: the backoff starts again from the minimum

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track_current_task()
        peername = writer.get_extra_info("peername") or ("?", 0)
        where = f"{peername[0]}:{peername[1]}"
        decoder = MtcpDecoder(self.max_bundle, self.resources.holding(writer.transport.abort, where, self.name))
        self.stats["connections"] += 1
        try:
            while data := await self._read(reader, decoder.idle, where):
                try:
                    bundles = decoder.feed(data)
                except WireError as exc:
                    self.stats[exc.reason] += 1
                    if exc.reason == "memory_budget":
                        self.resources.hit(self.name, "memory", str(exc), where)
                    log.warning("mtcp %s: %s; closing", where, exc)
                    return
                for bundle in bundles:
                    await self._deliver(bundle)
            if not decoder.idle:
                self.stats["truncated_bundle"] += 1  # the partial bundle is dropped
        except (ConnectionError, OSError):
            if not decoder.idle:
                self.stats["truncated_bundle"] += 1
        finally:
            decoder.holding.release()
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, idle: bool, where: str) -> bytes:
        """The next octets, or b"" (end) once the connection was silent too long (agent limits)."""
        limits = self.resources.limits
        timeout_ns = limits.idle_timeout_ns if idle else limits.partial_timeout_ns
        data = await read_within(reader, self.clock, self.clock.now_ns() + timeout_ns)
        if data is None:
            what = "idle" if idle else "partial"
            self.stats[f"{what}_timeout"] += 1
            self.resources.hit(self.name, what, f"nothing received for {timeout_ns / NS_PER_S:g} s", where)
            return b""
        return data

    async def _deliver(self, bundle: bytes) -> None:
        result = await deliver_to_sink(self.sink, bundle, self.name, None, self.stats)
        if not result.accepted:  # MTCP cannot refuse: the bundle is lost
            self.stats["dropped_" + result.reason] += 1
            log.warning("mtcp: dropped a bundle of %d bytes (%s)", len(bundle), result.reason)
