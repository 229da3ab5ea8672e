"""The convergence layer entries of a ``configure`` command (``clas``, docs/control.md).

One frozen config type per CLA kind, read from and written to JSON here and
handed as they are to :func:`hilnet.agent.cla.build_cla`. Everybody imports
them through :mod:`hilnet.agent.protocol`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hilnet.agent.jsonlines import FieldReader
from hilnet.units import BITS_PER_BYTE_8N1, MAX_BITS_PER_BYTE, MIN_BITS_PER_BYTE

_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):([0-9]{1,5})")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP address, ``host:port`` or ``[v6]:port`` in text."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# Defaults of the tunable fields (docs/agent.md): what the CLAs used before they could be set.
DEFAULT_KEEPALIVE_S = 10  # TCPCL keepalive interval offered in SESS_INIT / the v3 contact header (s; 0 = none)
DEFAULT_SEGMENT_MRU = 4 << 20  # TCPCLv4 Segment MRU offered in SESS_INIT (bytes)
DEFAULT_RECONNECT_MIN_NS = 250_000_000  # first wait before redialling a peer; doubles per failure
DEFAULT_RECONNECT_MAX_NS = 10_000_000_000  # ...up to this
DEFAULT_SEND_TIMEOUT_NS = 30_000_000_000  # MTCP: how long a send may wait for the peer's TCP
MAX_KEEPALIVE_S = 0xFFFF  # a u16 in SESS_INIT (RFC 9174 4.6) and in the v3 contact header (RFC 7242 4.1)
MAX_SEGMENT_MRU = 2**64 - 1  # a u64 in SESS_INIT
TLS_POLICIES = ("off", "enable", "require")  # tcpcl_security.TlsPolicy's values (docs/cla.md)


@dataclass(frozen=True, slots=True)
class TcpclConfig:
    """TCPCLv4 (RFC 9174): listen address (None: only dial out) and peers by node EID.

    ``keepalive_s`` and ``segment_mru_bytes`` are offered in SESS_INIT; a
    connector redials after ``reconnect_min_ns``, doubling up to ``reconnect_max_ns``.
    ``tls`` is the node's TLS policy (off, enable, require); unless off, ``cert``,
    ``key`` and ``ca`` are the paths of its PEM certificate, private key and lab CA.
    """

    type: ClassVar[str] = "tcpcl"
    listen: HostPort | None = None
    peers: Mapping[str, HostPort] = field(default_factory=dict)
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    segment_mru_bytes: int = DEFAULT_SEGMENT_MRU
    reconnect_min_ns: int = DEFAULT_RECONNECT_MIN_NS
    reconnect_max_ns: int = DEFAULT_RECONNECT_MAX_NS
    tls: str = "off"
    cert: str | None = None
    key: str | None = None
    ca: str | None = None


@dataclass(frozen=True, slots=True)
class MtcpConfig:
    """MTCP (µD3TN, dtn7 interop); listen and peers as TCPCL, the same redial backoff.

    ``send_timeout_ns``: how long one send may wait for the peer's TCP to take it all.
    """

    type: ClassVar[str] = "mtcp"
    listen: HostPort | None = None
    peers: Mapping[str, HostPort] = field(default_factory=dict)
    send_timeout_ns: int = DEFAULT_SEND_TIMEOUT_NS
    reconnect_min_ns: int = DEFAULT_RECONNECT_MIN_NS
    reconnect_max_ns: int = DEFAULT_RECONNECT_MAX_NS


@dataclass(frozen=True, slots=True)
class TcpclV3Config:
    """TCPCLv3 (RFC 7242, ION's TCP CL); listen and peers as TCPCL, the same redial backoff.

    ``keepalive_s`` is offered in the contact header.
    """

    type: ClassVar[str] = "tcpclv3"
    listen: HostPort | None = None
    peers: Mapping[str, HostPort] = field(default_factory=dict)
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    reconnect_min_ns: int = DEFAULT_RECONNECT_MIN_NS
    reconnect_max_ns: int = DEFAULT_RECONNECT_MAX_NS


@dataclass(frozen=True, slots=True)
class SerialConfig:
    """Serial CLA on a UART or pty ``port`` at ``baud`` bit/s to node ``peer``.

    ``delay_hint_ns`` is the one-way delay the link is expected to add (ns), to
    size acknowledgement timeouts; None lets the CLA measure it.
    ``bits_per_byte`` is what one byte costs on the line: 10 for 8N1, 11 for 8N2.
    ``rtscts``: the UART stops sending while the far end holds CTS low, so a full
    receive FIFO (16 bytes on a PL011: ~170 µs at 921600 baud) loses nothing.
    """

    type: ClassVar[str] = "serial"
    port: str
    baud: int
    peer: str
    delay_hint_ns: int | None = None
    bits_per_byte: int = BITS_PER_BYTE_8N1
    rtscts: bool = False  # RTS/CTS hardware flow control on the UART (the cable carries RTS and CTS)


LTP_PORT = 1113  # RFC 7122's UDP port for LTP
# LTP tunables and their defaults (docs/agent.md): the same as the engine's own (ltp_session.LtpSettings).
LTP_TUNABLES = {
    "segment_bytes": 1400,  # client data per segment: a segment fits a 1500-byte MTU
    "max_block_bytes": 64 << 20,  # largest block (= bundle) sent or taken
    "max_export": 64,  # export sessions open at once
    "max_import": 64,  # import sessions open at once
    "rto_margin_ns": 1_000_000_000,  # added to the plan's round trip for a retransmission timeout
    "max_retries": 10,  # retransmissions of one checkpoint, report or cancel
    "idle_ns": 60_000_000_000,  # an import session silent this long (plus two round trips) is reclaimed
    "rate_bytes_per_s": 0,  # pace to a peer the plan says nothing of (0: unpaced)
    "rtt_ns": 0,  # round trip to a peer the plan says nothing of
}


@dataclass(frozen=True, slots=True)
class LtpConfig:
    """LTP (RFC 5326) over UDP (RFC 7122): bind ``listen``; ``peers`` by node EID -> their UDP address.

    ``engine_id``: ours, ``engines``: the peers'; by default each is the node's
    ``ipn:`` node number, as ION numbers engines. ``tunables`` holds the
    :data:`LTP_TUNABLES` that differ from their defaults.
    """

    type: ClassVar[str] = "ltp"
    listen: HostPort = HostPort("0.0.0.0", LTP_PORT)
    peers: Mapping[str, HostPort] = field(default_factory=dict)
    engine_id: int | None = None
    engines: Mapping[str, int] = field(default_factory=dict)
    tunables: Mapping[str, int] = field(default_factory=dict)

    def tunable(self, name: str) -> int:
        return self.tunables.get(name, LTP_TUNABLES[name])


ClaConfig = TcpclConfig | TcpclV3Config | MtcpConfig | SerialConfig | LtpConfig


def _hostport(o: FieldReader, name: str, v: Any) -> HostPort:
    m = _HOSTPORT.fullmatch(v) if isinstance(v, str) else None
    if m is None or int(m.group(2)) > 65535:
        raise o.bad(name, "HOST:PORT", v)
    return HostPort(m.group(1).strip("[]"), int(m.group(2)))


def _read_peers(c: FieldReader) -> dict[str, HostPort]:
    raw = c.get("peers", False)
    if raw is None:
        return {}
    p = c.nested(raw, c.where + "peers.")
    out = {}
    for eid, addr in p.obj.items():
        p.seen.add(eid)
        p.check_eid(eid, eid)
        out[eid] = _hostport(p, eid, addr)
    return out


def _read_serial(c: FieldReader) -> SerialConfig:
    bpb = c.optional_integer("bits_per_byte", min=MIN_BITS_PER_BYTE)
    if bpb is not None and bpb > MAX_BITS_PER_BYTE:
        raise c.bad("bits_per_byte", f"an integer from {MIN_BITS_PER_BYTE} to {MAX_BITS_PER_BYTE} (8N1 is 10)", bpb)
    return SerialConfig(
        c.string("port"),
        c.integer("baud", min=1),
        c.eid("peer"),
        c.optional_integer("delay_hint_ns", min=0),
        BITS_PER_BYTE_8N1 if bpb is None else bpb,
        bool(c.optional_boolean("rtscts")),
    )


def _read_tcp(c: FieldReader, kind: str) -> TcpclConfig | TcpclV3Config | MtcpConfig:
    listen = c.get("listen", False)
    where = None if listen is None else _hostport(c, "listen", listen)
    low = c.optional_integer("reconnect_min_ns", min=1)
    high = c.optional_integer("reconnect_max_ns", min=1)
    low = DEFAULT_RECONNECT_MIN_NS if low is None else low
    high = max(DEFAULT_RECONNECT_MAX_NS, low) if high is None else high
    if high < low:
        raise c.bad("reconnect_max_ns", f"an integer >= reconnect_min_ns ({low})", high)
    if kind == "mtcp":
        timeout = c.optional_integer("send_timeout_ns", min=1)
        return MtcpConfig(
            listen=where,
            peers=_read_peers(c),
            send_timeout_ns=timeout or DEFAULT_SEND_TIMEOUT_NS,
            reconnect_min_ns=low,
            reconnect_max_ns=high,
        )
    keepalive = c.optional_integer("keepalive_s", min=0)
    if keepalive is not None and keepalive > MAX_KEEPALIVE_S:
        raise c.bad("keepalive_s", f"an integer from 0 to {MAX_KEEPALIVE_S} (s; 0 = no keepalives)", keepalive)
    if kind == "tcpclv3":
        ka = DEFAULT_KEEPALIVE_S if keepalive is None else keepalive
        return TcpclV3Config(where, _read_peers(c), ka, reconnect_min_ns=low, reconnect_max_ns=high)
    mru = c.optional_integer("segment_mru_bytes", min=1)
    if mru is not None and mru > MAX_SEGMENT_MRU:
        raise c.bad("segment_mru_bytes", "an integer from 1 to 2^64-1 (bytes)", mru)
    tls = c.optional_string("tls") or "off"
    if tls not in TLS_POLICIES:
        raise c.bad("tls", "one of " + ", ".join(TLS_POLICIES), tls)
    need = tls != "off"  # TLS needs the node's certificate, its key and the CA of its peers
    cert, key, ca = (c.optional_string(k, required=need) for k in ("cert", "key", "ca"))
    return TcpclConfig(
        listen=where,
        peers=_read_peers(c),
        tls=tls,
        cert=cert,
        key=key,
        ca=ca,
        keepalive_s=DEFAULT_KEEPALIVE_S if keepalive is None else keepalive,
        segment_mru_bytes=mru or DEFAULT_SEGMENT_MRU,
        reconnect_min_ns=low,
        reconnect_max_ns=high,
    )


def _read_ltp(c: FieldReader) -> LtpConfig:
    listen = c.get("listen", False)
    engines_raw = c.get("engines", False) or {}
    e = c.nested(engines_raw, c.where + "engines.")
    engines = {}
    for eid in e.obj:
        e.seen.add(eid)
        e.check_eid(eid, eid)
        engines[eid] = e.integer(eid, min=1)
    tunables = {}
    for name, default in LTP_TUNABLES.items():
        v = c.optional_integer(name, min=0 if default == 0 else 1)
        if v is not None and v != default:
            tunables[name] = v
    return LtpConfig(
        listen=HostPort("0.0.0.0", LTP_PORT) if listen is None else _hostport(c, "listen", listen),
        peers=_read_peers(c),
        engine_id=c.optional_integer("engine_id", min=1),
        engines=engines,
        tunables=tunables,
    )


def read_cla(o: FieldReader, i: int, raw: Any) -> ClaConfig:
    """Entry ``i`` of the ``clas`` array of the message ``o`` reads."""
    c = o.nested(raw, f"clas[{i}].")
    kind = c.get("type", True)
    cfg: ClaConfig
    if kind in ("tcpcl", "tcpclv3", "mtcp"):
        cfg = _read_tcp(c, kind)
    elif kind == "serial":
        cfg = _read_serial(c)
    elif kind == "ltp":
        cfg = _read_ltp(c)
    else:
        raise c.bad("type", "one of ltp, mtcp, serial, tcpcl, tcpclv3", kind)
    c.finish()
    return cfg


def cla_json(c: ClaConfig) -> dict[str, Any]:
    """The JSON object of ``c``, as :func:`read_cla` reads it back (defaults left out)."""
    d: dict[str, Any] = {"type": c.type}
    if isinstance(c, SerialConfig):
        d |= {"port": c.port, "baud": c.baud, "peer": c.peer}
        if c.delay_hint_ns is not None:
            d["delay_hint_ns"] = c.delay_hint_ns
        if c.bits_per_byte != BITS_PER_BYTE_8N1:
            d["bits_per_byte"] = c.bits_per_byte
        if c.rtscts:
            d["rtscts"] = True
        return d
    if isinstance(c, LtpConfig):
        d |= {"listen": str(c.listen), "peers": {k: str(v) for k, v in c.peers.items()}}
        if c.engine_id is not None:
            d["engine_id"] = c.engine_id
        if c.engines:
            d["engines"] = dict(c.engines)
        return d | dict(c.tunables)
    if c.listen is not None:
        d["listen"] = str(c.listen)
    d["peers"] = {k: str(v) for k, v in c.peers.items()}
    tunables = [("reconnect_min_ns", DEFAULT_RECONNECT_MIN_NS), ("reconnect_max_ns", DEFAULT_RECONNECT_MAX_NS)]
    if isinstance(c, TcpclConfig):
        tunables += [("keepalive_s", DEFAULT_KEEPALIVE_S), ("segment_mru_bytes", DEFAULT_SEGMENT_MRU)]
    elif isinstance(c, TcpclV3Config):
        tunables += [("keepalive_s", DEFAULT_KEEPALIVE_S)]
    else:
        tunables += [("send_timeout_ns", DEFAULT_SEND_TIMEOUT_NS)]
    d |= {name: getattr(c, name) for name, default in tunables if getattr(c, name) != default}
    if isinstance(c, TcpclConfig) and c.tls != "off":
        d |= {"tls": c.tls, "cert": c.cert, "key": c.key, "ca": c.ca}
    return d
