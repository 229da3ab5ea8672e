"""``tcp://LISTEN_HOST:PORT?peer=HOST:PORT``: a TCP stream relay (loopback backend).

Each end listens on its own address. A connection accepted on one end becomes
a flow: the engine carries an OPEN marker, then the bytes, then a FIN marker
through the link's direction towards the other end, which then connects to
ITS ``peer`` (the far agent's real listening port) and writes the bytes there.
Bytes coming back on that connection travel the reverse direction, tagged
with the same flow id. ``Unit.tag`` is ``(flow_id, kind)`` with kind one of
``OPEN``, ``DATA``, ``FIN``.

Outages stall, never drop: the shaper's STREAM gate holds units while the
link is down and the engine stops reading the sockets feeding it, so TCP's
own flow control pushes back on the sender. A connection made while the link
is down is accepted, and its OPEN waits in the stalled direction, so it is
connected onward when the link comes up. We accept rather than refuse because
on a real link a SYN sent into an outage is not refused either: it is
retransmitted until the path returns, and agents that treat "refused" as "peer
dead" would back off for the wrong reason.

Closing: EOF or a reset on one side sends FIN across; the far side flushes
what it holds and shuts down its write half. A pair is closed when both halves
are done, so closing either side closes the pair once the other notices.
Bytes the link delivered to a flow that has no connection to go to (the far
agent refused it, or it is closed) are counted ``undeliverable`` (dropped, in
the link stats), never delivered.
"""

from __future__ import annotations

import errno
import itertools
import socket
from dataclasses import dataclass, field
from typing import cast

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import READ, STREAM, WRITE, Endpoint, Rx, SpecText, parse_host_port, resolve

OPEN = "OPEN"
DATA = "DATA"
FIN = "FIN"
FlowTag = tuple[int, str]  # (flow id, OPEN | DATA | FIN): the tag of every unit this endpoint reads


def flow_tag(tag: object) -> FlowTag:
    """A unit's tag as this endpoint made it (the engine hands tags back untouched)."""
    return cast(FlowTag, tag)


READ_SIZE = 65536
_flow_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class TcpSpec:
    """Listen here; connect flows that arrive from the other end to ``peer``."""

    text: str
    listen: tuple[str, int]
    peer: tuple[str, int]


def parse(st: SpecText) -> TcpSpec:
    opts = st.take({"peer"})
    if st.path not in ("", "/"):
        raise SpecError(f"{st.text!r}: unexpected path {st.path!r}; expected tcp://HOST:PORT?peer=HOST:PORT")
    listen = parse_host_port(st.netloc, "listen address", st.text)
    if "peer" not in opts:
        raise SpecError(f"{st.text!r}: missing ?peer=HOST:PORT (the far agent's listening address)")
    return TcpSpec(st.text, listen, parse_host_port(opts["peer"], "peer", st.text))


@dataclass(slots=True)
class Flow:
    """One relayed connection as seen from this end."""

    fid: int
    sock: socket.socket
    accepted: bool  # True: the agent connected to us; False: we connected to peer
    agent_addr: tuple  # the agent's side of this TCP connection
    local_addr: tuple  # our side
    connecting: bool = False
    read_eof: bool = False  # no more bytes will be read (EOF, reset, or error)
    fin_sent: bool = False  # our FIN marker went into the link
    shut_pending: bool = False  # the far side finished: shut our write half once flushed
    write_shut: bool = False
    out: bytearray = field(default_factory=bytearray)
    units_waiting: int = 0  # DATA units held in ``out`` while connecting


class TcpEndpoint(Endpoint):
    medium = STREAM
    max_unit = 1 << 30

    def __init__(self, spec: TcpSpec, label: str = ""):
        super().__init__(spec, label or f"tcp:{spec.listen[0]}:{spec.listen[1]}")
        family, addr = resolve(*spec.listen, spec.text)
        self.family = family
        _, self.peer_addr = resolve(*spec.peer, spec.text)
        ls = socket.socket(family, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ls.bind(addr)
            ls.listen(64)
        except OSError as e:
            ls.close()
            raise EndpointError(
                f"{spec.text}: cannot listen on {spec.listen[0]}:{spec.listen[1]}: {e.strerror or e}"
            ) from None
        ls.setblocking(False)
        self.listener = ls
        self.listen_addr = ls.getsockname()
        self.flows: dict[int, Flow] = {}
        self._by_fd: dict[int, Flow] = {}

    # --- engine interface -------------------------------------------------
    def interest(self, reading: bool) -> dict[int, int]:
        wanted = {self.listener.fileno(): READ}
        for fd, f in self._by_fd.items():
            mask = 0
            if reading and not f.read_eof and not f.connecting:
                mask |= READ
            if f.connecting or f.out:
                mask |= WRITE
            wanted[fd] = mask
        return wanted

    def on_ready(self, fd: int, mask: int, now_ns: int) -> list[Rx]:
        if fd == self.listener.fileno():
            return self._accept(now_ns)
        f = self._by_fd.get(fd)
        if f is None:
            return []
        out: list[Rx] = []
        if f.connecting and mask & (WRITE | 0x08 | 0x10):
            err = f.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:  # the far agent is not listening: what waited for the connection goes nowhere
                f.read_eof = True
                self._undeliverable(len(f.out), f.units_waiting)
                f.out.clear()
                self._finish(f, out, now_ns)
                self._close(f)
                return out
            f.connecting = False
            f.units_waiting = 0
            f.local_addr = f.sock.getsockname()
        if mask & WRITE or f.out:
            self._flush(f, out, now_ns)
        if mask & (READ | 0x08 | 0x10) and not f.read_eof and not f.connecting:
            try:
                data = f.sock.recv(READ_SIZE)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""  # reset: the agent's side is gone, tell the far side
            if data:
                out.append(Rx(data, now_ns, (f.fid, DATA)))
            elif data == b"":
                f.read_eof = True
                self._finish(f, out, now_ns)
        self._maybe_close(f)
        return out

    def send(self, data: bytes, tag: object, now_ns: int) -> list[Rx]:
        fid, kind = flow_tag(tag)
        out: list[Rx] = []
        if kind == OPEN:
            self._connect(fid, now_ns, out)
            return out
        f = self.flows.get(fid)
        if f is None:
            if kind == DATA:
                self._undeliverable(len(data), 1)  # this side closed the flow, or never connected it
            return out
        if kind == DATA:
            if f.write_shut:
                self._undeliverable(len(data), 1)
            else:
                f.out += data
                f.units_waiting += f.connecting
                if not f.connecting:
                    self._flush(f, out, now_ns)
        elif kind == FIN:
            f.shut_pending = True
            if not f.connecting:
                self._flush(f, out, now_ns)
        self._maybe_close(f)
        return out

    def backlog_bytes(self) -> int:
        return sum(len(f.out) for f in self.flows.values())

    def close(self) -> None:
        if not self.closed:
            for f in list(self.flows.values()):
                self._close(f)
            self.listener.close()
        super().close()

    # --- inside -----------------------------------------------------------
    def _add(self, f: Flow) -> None:
        f.sock.setblocking(False)
        try:
            f.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.flows[f.fid] = f
        self._by_fd[f.sock.fileno()] = f

    def _accept(self, now_ns: int) -> list[Rx]:
        out: list[Rx] = []
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                    return out  # try again on the next wake; the listener itself is fine
                raise EndpointError(f"{self.label}: accept failed: {e.strerror or e}") from None
            f = Flow(next(_flow_ids), sock, True, addr, sock.getsockname())
            self._add(f)
            out.append(Rx(b"", now_ns, (f.fid, OPEN)))

    def _connect(self, fid: int, now_ns: int, out: list[Rx]) -> None:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(self.peer_addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            out.append(Rx(b"", now_ns, (fid, FIN)))  # the far agent is not listening: close the pair
            return
        f = Flow(fid, sock, False, self.peer_addr, ("", 0), connecting=(err != 0))
        if not f.connecting:
            f.local_addr = sock.getsockname()
        self._add(f)

    def _flush(self, f: Flow, out: list[Rx], now_ns: int) -> None:
        while f.out:
            try:
                n = f.sock.send(f.out)
            except BlockingIOError:
                return
            except OSError:
                # The agent's side is gone mid-write: what is left cannot be delivered.
                self._undeliverable(len(f.out), f.units_waiting)
                f.out.clear()
                f.read_eof = True
                self._finish(f, out, now_ns)
                f.write_shut = True
                return
            del f.out[:n]
        if f.shut_pending and not f.write_shut:
            try:
                f.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            f.write_shut = True

    def _undeliverable(self, nbytes: int, units: int) -> None:
        """Count what the shaper delivered here that reaches no agent (link stats: 'undeliverable')."""
        self.undeliverable_units += units
        self.undeliverable_bytes += nbytes

    def _finish(self, f: Flow, out: list[Rx], now_ns: int) -> None:
        if not f.fin_sent:
            f.fin_sent = True
            out.append(Rx(b"", now_ns, (f.fid, FIN)))

    def _maybe_close(self, f: Flow) -> None:
        if f.read_eof and (f.write_shut or (f.shut_pending and not f.out)):
            self._close(f)

    def _close(self, f: Flow) -> None:
        fd = f.sock.fileno()
        if fd >= 0:
            self.gone_fds.append(fd)
        self._by_fd.pop(fd, None)
        self.flows.pop(f.fid, None)
        try:
            f.sock.close()
        except OSError:
            pass


def open_endpoint(spec: TcpSpec, label: str = "") -> TcpEndpoint:
    return TcpEndpoint(spec, label)
