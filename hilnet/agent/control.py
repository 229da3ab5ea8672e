"""The agent's control protocol: JSON lines on stdin (commands) and stdout (events).

Pure message layer: :func:`parse_command` turns one line into a typed
command or raises :class:`~hilnet.errors.ControlError` with a reason a person
can act on; :func:`encode_event` writes one event as one line. The controller
side uses :func:`encode_command` and :func:`parse_event`. docs/control.md is
the reference for every message shape; :data:`PROTOCOL_VERSION` is its version.

Lines are UTF-8 JSON objects of at most :data:`MAX_LINE` bytes. Parsing is
strict (unknown fields, duplicate keys, NaN and wrong types are errors) so
that a controller bug shows up as an ``error`` event, not as a silently
different run.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from hilnet.agent.jsonlines import (  # noqa: E402,F401  (re-exported)
    LINE_EXCERPT,
    MAX_LINE,
    PROTOCOL_VERSION,
    Id,
    _check_eid,
    _dump,
    _load_line,
    _Obj,
    _type_name,
)
from hilnet.agent.nodes import NodeMap
from hilnet.errors import ControlError, InputError
from hilnet.scenario.contact import Contact
from hilnet.units import MAX_BITS_PER_BYTE, MIN_BITS_PER_BYTE

_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):([0-9]{1,5})")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP address, ``host:port`` or ``[v6]:port`` in text."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _hostport(o: _Obj, name: str, v: Any) -> HostPort:
    m = _HOSTPORT.fullmatch(v) if isinstance(v, str) else None
    if m is None or int(m.group(2)) > 65535:
        raise o.bad(name, "HOST:PORT", v)
    return HostPort(m.group(1).strip("[]"), int(m.group(2)))


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command; ``id`` (string or integer) is echoed in the reply."""

    cmd: ClassVar[str] = ""
    id: Id = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Command):
    cmd: ClassVar[str] = "hello"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Command):
    cmd: ClassVar[str] = "status"


@dataclass(frozen=True, slots=True, kw_only=True)
class Time(Command):
    cmd: ClassVar[str] = "time"


@dataclass(frozen=True, slots=True, kw_only=True)
class Shutdown(Command):
    cmd: ClassVar[str] = "shutdown"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The bundle store: SQLite file ``path``; quotas in bytes and bundles (None: no limit)."""

    path: str
    quota_bytes: int | None = None
    quota_bundles: int | None = None


@dataclass(frozen=True, slots=True)
class TcpclConfig:
    """TCPCLv4 (RFC 9174): listen address (None: only dial out) and peers by node EID."""

    type: ClassVar[str] = "tcpcl"
    listen: HostPort | None = None
    peers: Mapping[str, HostPort] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MtcpConfig:
    """MTCP (µD3TN, dtn7 interop); same shape as TCPCL."""

    type: ClassVar[str] = "mtcp"
    listen: HostPort | None = None
    peers: Mapping[str, HostPort] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SerialConfig:
    """Serial CLA on a UART or pty ``port`` at ``baud`` bit/s to node ``peer``.

    ``delay_hint_ns`` is the one-way delay the link is expected to add (ns), to
    size acknowledgement timeouts; None lets the CLA measure it.
    ``bits_per_byte`` is what one byte costs on the line: 10 for 8N1, 11 for 8N2.
    """

    type: ClassVar[str] = "serial"
    port: str
    baud: int
    peer: str
    delay_hint_ns: int | None = None
    bits_per_byte: int = 10


ClaConfig = TcpclConfig | MtcpConfig | SerialConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class Configure(Command):
    """Everything an agent needs to run a node.

    ``contacts`` are in scenario time; scenario time ``s`` is agent clock time
    ``epoch_ns + s / scale`` (only window times scale; rate and owlt are
    physics). ``nodes`` maps scenario names to node EIDs; ``routes`` maps a
    destination EID (or ``"*"``) to a next-hop EID. ``dup_window_ns``: how long
    delivered bundle ids are remembered to suppress duplicates (None: forever).
    """

    cmd: ClassVar[str] = "configure"
    node: str
    eid: str
    store: StoreConfig | None = None
    clas: tuple[ClaConfig, ...] = ()
    contacts: tuple[Contact, ...] = ()
    nodes: Mapping[str, str] = field(default_factory=dict)
    routes: Mapping[str, str] = field(default_factory=dict)
    epoch_ns: int = 0
    scale: float = 1.0
    dup_window_ns: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Inject(Command):
    """Make a bundle for ``dest`` here, as if a local application sent it.

    Exactly one of ``size`` (with ``seed``: the payload is
    :func:`hilnet.agent.payload.payload_for` ``(seed, size)``) and ``payload``
    (sent as ``payload_b64``). ``lifetime_ns`` None: the agent's default.
    ``priority`` 0 bulk, 1 normal, 2 expedited. ``tag`` is the controller's name.
    """

    cmd: ClassVar[str] = "inject"
    dest: str
    size: int | None = None
    payload: bytes | None = None
    seed: int = 0
    lifetime_ns: int | None = None
    priority: int = 1
    tag: str | None = None


def _read_store(o: _Obj) -> StoreConfig | None:
    raw = o.get("store", False)
    if raw is None:
        return None
    s = _Obj(raw, o.prefix, "store.")
    cfg = StoreConfig(
        s.str("path"), s.int("quota_bytes", required=False, min=0), s.int("quota_bundles", required=False, min=0)
    )
    s.finish()
    return cfg


def _read_peers(c: _Obj) -> dict[str, HostPort]:
    raw = c.get("peers", False)
    if raw is None:
        return {}
    p = _Obj(raw, c.prefix, c.where + "peers.")
    out = {}
    for eid, addr in raw.items():
        p.seen.add(eid)
        _check_eid(p, eid, eid)
        out[eid] = _hostport(p, eid, addr)
    return out


def _read_cla(o: _Obj, i: int, raw: Any) -> ClaConfig:
    c = _Obj(raw, o.prefix, f"clas[{i}].")
    kind = c.get("type", True)
    if kind in ("tcpcl", "mtcp"):
        listen = c.get("listen", False)
        cls = TcpclConfig if kind == "tcpcl" else MtcpConfig
        cfg: ClaConfig = cls(None if listen is None else _hostport(c, "listen", listen), _read_peers(c))
    elif kind == "serial":
        bpb = c.int("bits_per_byte", required=False, min=MIN_BITS_PER_BYTE)
        if bpb is not None and bpb > MAX_BITS_PER_BYTE:
            raise c.bad("bits_per_byte", f"an integer from {MIN_BITS_PER_BYTE} to {MAX_BITS_PER_BYTE} (8N1 is 10)", bpb)
        cfg = SerialConfig(
            c.str("port"),
            c.int("baud", min=1),
            c.eid("peer"),
            c.int("delay_hint_ns", required=False, min=0),
            10 if bpb is None else bpb,
        )
    else:
        raise c.bad("type", "one of mtcp, serial, tcpcl", kind)
    c.finish()
    return cfg


def _read_contact(o: _Obj, i: int, raw: Any) -> Contact:
    c = _Obj(raw, o.prefix, f"contacts[{i}].")
    frm, to = c.str("frm"), c.str("to")
    start = c.int("start_ns", min=0)
    end = c.int("end_ns", min=start)
    contact = Contact(frm, to, start, end, c.int("rate", min=1), c.int("owlt_ns", min=0))
    c.finish()
    return contact


def _list(o: _Obj, name: str) -> list:
    v = o.get(name, False)
    if v is None:
        return []
    if not isinstance(v, list):
        raise o.bad(name, "an array", v)
    return v


def _eid_map(o: _Obj, name: str, keys_are_eids: bool) -> dict[str, str]:
    raw = o.get(name, False)
    if raw is None:
        return {}
    m = _Obj(raw, o.prefix, f"{name}.")
    for k, v in raw.items():
        m.seen.add(k)
        if keys_are_eids and k != "*":
            _check_eid(m, k, k)
        if not isinstance(v, str):
            raise m.bad(k, "an ipn:N.S or dtn://node/ EID", v)
        _check_eid(m, k, v)
    return dict(raw)


def _configure(o: _Obj) -> dict:
    nodes = _eid_map(o, "nodes", keys_are_eids=False)
    try:
        NodeMap(nodes)
    except InputError as e:
        raise o.error(f"field 'nodes': {e}") from None
    scale = o.get("scale", False)
    if scale is None:
        scale = 1.0
    elif isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise o.bad("scale", "a number > 0", scale)
    return dict(
        node=o.str("node"),
        eid=o.eid("eid"),
        store=_read_store(o),
        clas=tuple(_read_cla(o, i, c) for i, c in enumerate(_list(o, "clas"))),
        contacts=tuple(_read_contact(o, i, c) for i, c in enumerate(_list(o, "contacts"))),
        nodes=nodes,
        routes=_eid_map(o, "routes", keys_are_eids=True),
        epoch_ns=o.int("epoch_ns", required=False) or 0,
        scale=float(scale),
        dup_window_ns=o.int("dup_window_ns", required=False, min=0),
    )


def _inject(o: _Obj) -> dict:
    dest = o.eid("dest")
    size = o.int("size", required=False, min=0)
    b64 = o.get("payload_b64", False)
    if (size is None) == (b64 is None):
        raise o.error("exactly one of 'size' and 'payload_b64' is required")
    payload = None
    if b64 is not None:
        if not isinstance(b64, str):
            raise o.bad("payload_b64", "a base64 string", b64)
        try:
            payload = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise o.error("field 'payload_b64' is not valid base64") from None
    seed = o.int("seed", required=False, min=0)
    if seed is not None and payload is not None:
        raise o.error("'seed' goes with 'size', not with 'payload_b64'")
    priority = o.int("priority", required=False, min=0)
    if priority is not None and priority > 2:
        raise o.bad("priority", "0, 1 or 2", priority)
    return dict(
        dest=dest,
        size=size,
        payload=payload,
        seed=seed or 0,
        lifetime_ns=o.int("lifetime_ns", required=False, min=1),
        priority=1 if priority is None else priority,
        tag=o.str("tag", required=False),
    )


COMMANDS: dict[str, type[Command]] = {c.cmd: c for c in (Hello, Configure, Inject, Status, Time, Shutdown)}
_READERS = {"configure": _configure, "inject": _inject}


def parse_command(line: bytes | str) -> Command:
    """One control line (a trailing newline is allowed) -> the command it holds.

    Raises :class:`~hilnet.errors.ControlError` naming what is wrong: size over
    :data:`MAX_LINE` bytes, not UTF-8, not JSON, not an object, missing or
    unknown ``cmd``, an unsupported ``v``, missing, unknown or wrong-typed fields.
    """
    obj = _load_line(line, "cmd")
    name = obj["cmd"]
    if name not in COMMANDS:
        raise ControlError(f"unknown cmd {name!r}; expected one of {', '.join(sorted(COMMANDS))}")
    o = _Obj(obj, f"{name}: ", "")
    o.seen.add("cmd")
    version = o.get("v", False)
    if version is not None and (isinstance(version, bool) or version != PROTOCOL_VERSION):
        raise o.error(f"unsupported protocol version {json.dumps(version)}; this agent speaks {PROTOCOL_VERSION}")
    cid = o.get("id", False)
    if isinstance(cid, bool) or not isinstance(cid, (str, int, type(None))):
        raise o.bad("id", "a string or an integer", cid)
    values = _READERS[name](o) if name in _READERS else {}
    o.finish()
    return COMMANDS[name](id=cid, **values)


def _cla_json(c: ClaConfig) -> dict:
    if isinstance(c, SerialConfig):
        d = {"type": c.type, "port": c.port, "baud": c.baud, "peer": c.peer}
        if c.delay_hint_ns is not None:
            d["delay_hint_ns"] = c.delay_hint_ns
        if c.bits_per_byte != 10:
            d["bits_per_byte"] = c.bits_per_byte
        return d
    d = {"type": c.type}
    if c.listen is not None:
        d["listen"] = str(c.listen)
    d["peers"] = {k: str(v) for k, v in c.peers.items()}
    return d


def command_json(command: Command) -> dict:
    """The JSON object of ``command``, as :func:`parse_command` reads it back."""
    d: dict[str, Any] = {"cmd": command.cmd, "v": PROTOCOL_VERSION}
    if command.id is not None:
        d["id"] = command.id
    if isinstance(command, Configure):
        d |= {"node": command.node, "eid": command.eid}
        if command.store is not None:
            s = command.store
            d["store"] = {"path": s.path} | {
                k: v for k, v in (("quota_bytes", s.quota_bytes), ("quota_bundles", s.quota_bundles)) if v is not None
            }
        d["clas"] = [_cla_json(c) for c in command.clas]
        d["contacts"] = [{f.name: getattr(c, f.name) for f in fields(Contact)} for c in command.contacts]
        d |= {
            "nodes": dict(command.nodes),
            "routes": dict(command.routes),
            "epoch_ns": command.epoch_ns,
            "scale": command.scale,
        }
        if command.dup_window_ns is not None:
            d["dup_window_ns"] = command.dup_window_ns
    elif isinstance(command, Inject):
        d["dest"] = command.dest
        if command.payload is not None:
            d["payload_b64"] = base64.b64encode(command.payload).decode("ascii")
        else:
            d |= {"size": command.size, "seed": command.seed}
        d["priority"] = command.priority
        for k in ("lifetime_ns", "tag"):
            if getattr(command, k) is not None:
                d[k] = getattr(command, k)
    return d


def encode_command(command: Command) -> bytes:
    """``command`` as one JSON line (UTF-8, ending in a newline), for the controller to send."""
    return _dump(command_json(command))


# Events live in hilnet.agent.events; re-exported so one import serves both sides.
from hilnet.agent.events import *  # noqa: E402,F401,F403
from hilnet.agent.events import Error, Reply  # noqa: E402


def reply_to(command: Command, *, t_ns: int, node: str | None, result: Mapping | None = None) -> Reply:
    """The ``reply`` event answering ``command`` (its id echoed)."""
    return Reply(t_ns=t_ns, node=node, cmd=command.cmd, id=command.id, result=dict(result or {}))


def error_for(line: bytes | str, exc: Exception, *, t_ns: int, node: str | None) -> Error:
    """The ``error`` event for a control ``line`` that raised ``exc``.

    Quotes up to :data:`LINE_EXCERPT` characters of the line and, when the line
    is a JSON object at all, echoes its ``id`` and ``cmd`` so the controller
    can match the error to what it sent.
    """
    text = line.decode("utf-8", "replace") if isinstance(line, (bytes, bytearray)) else line
    text = text.rstrip("\r\n")
    cid = cmd = None
    if len(text) <= MAX_LINE:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            if isinstance(obj.get("id"), (str, int)) and not isinstance(obj.get("id"), bool):
                cid = obj["id"]
            if isinstance(obj.get("cmd"), str) and obj["cmd"] in COMMANDS:
                cmd = obj["cmd"]
    excerpt = text if len(text) <= LINE_EXCERPT else text[: LINE_EXCERPT - 3] + "..."
    return Error(t_ns=t_ns, node=node, reason=str(exc), id=cid, cmd=cmd, line=excerpt)
