"""Control commands: what the controller sends an agent, one JSON line each (docs/control.md).

:func:`parse_command` turns one line into a typed command or raises
:class:`~hilnet.errors.ControlError` with a reason a person can act on;
:func:`encode_command` is its inverse. :func:`reply_to` and :func:`error_for`
make the events that answer a command. Imported through
:mod:`hilnet.agent.protocol`, with the events.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from hilnet.agent.cla_config import ClaConfig, cla_json, read_cla
from hilnet.agent.events import Error, Reply
from hilnet.agent.jsonlines import (
    LINE_EXCERPT,
    MAX_INT,
    MAX_LINE,
    PROTOCOL_VERSION,
    FieldReader,
    Id,
    dump_line,
    load_line,
)
from hilnet.agent.node_limits import Limits, StoreConfig, node_limits_json, read_limits, read_store
from hilnet.agent.nodes import NodeMap
from hilnet.bundle.bpsec.policy import CONFIDENTIALITY, INTEGRITY
from hilnet.bundle.cos import MAX_ORDINAL
from hilnet.bundle.crc import CrcType
from hilnet.errors import ControlError, InputError
from hilnet.scenario.contact import Contact
from hilnet.scenario.hops import MAX_HOP_LIMIT

#: ``bundle_crc`` of configure -> the CRC type of every block of the bundles the agent makes
#: (RFC 9171 4.2.1; some small stacks read only CRC-less bundles)
BUNDLE_CRCS: dict[str, CrcType] = {"none": CrcType.NONE, "crc16": CrcType.CRC16, "crc32c": CrcType.CRC32C}

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Configure(Command):
    """Everything an agent needs to run a node.

    ``contacts`` are in scenario time; scenario time ``s`` is agent clock time
    ``epoch_ns + s / scale`` (only window times scale; rate and owlt are
    physics). ``nodes`` maps scenario names to node EIDs; ``routes`` maps a
    destination EID (or ``"*"``) to a next-hop EID. ``dup_window_ns``: how long
    delivered bundle ids are remembered to suppress duplicates (None: forever).
    ``keys``: the node's BPSec key file (docs/bundle.md; None: no keys).
    ``hold``: plan time does not run until a :class:`Start` says where its 0
    is (``epoch_ns`` is then ignored): the controller configures every agent
    first and only then picks the run's start.
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
    keys: str | None = None
    bundle_crc: str = "crc32c"  # the CRC type of the bundles this agent makes: a key of BUNDLE_CRCS
    limits: Limits = Limits()
    hold: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Start(Command):
    """Plan time 0 is ``epoch_ns`` of the agent's clock: the run's start, after a held configure."""

    cmd: ClassVar[str] = "start"
    epoch_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Inject(Command):
    """Make a bundle for ``dest`` here, as if a local application sent it.

    Exactly one of ``size`` (with ``seed``: the payload is
    :func:`hilnet.agent.payload.payload_for` ``(seed, size)``) and ``payload``
    (sent as ``payload_b64``). ``lifetime_ns`` None: the agent's default.
    ``priority`` 0 bulk, 1 normal, 2 expedited, and ``ordinal`` (0..254, higher
    first) orders expedited bundles: both go into the bundle's class-of-service
    block (type 193, as ION). ``tag`` is the controller's name. ``integrity``
    and ``confidentiality`` name the BPSec services the bundle gets
    (:data:`hilnet.bundle.bpsec.INTEGRITY`, :data:`~hilnet.bundle.bpsec.CONFIDENTIALITY`).
    ``hop_limit`` (1..255) is how many hops the bundle may take (None: the agent's default).
    """

    cmd: ClassVar[str] = "inject"
    dest: str
    size: int | None = None
    payload: bytes | None = None
    seed: int = 0
    lifetime_ns: int | None = None
    priority: int = 1
    ordinal: int = 0
    tag: str | None = None
    integrity: str | None = None
    confidentiality: str | None = None
    hop_limit: int | None = None


def _read_contact(o: FieldReader, i: int, raw: Any) -> Contact:
    c = o.nested(raw, f"contacts[{i}].")
    frm, to = c.string("frm"), c.string("to")
    start = c.integer("start_ns", min=0)
    end = c.integer("end_ns", min=start)
    contact = Contact(frm, to, start, end, c.integer("rate", min=1), c.integer("owlt_ns", min=0))
    c.finish()
    return contact


def _list(o: FieldReader, name: str) -> list[Any]:
    v = o.get(name, False)
    if v is None:
        return []
    if not isinstance(v, list):
        raise o.bad(name, "an array", v)
    return v


def _eid_map(o: FieldReader, name: str, keys_are_eids: bool) -> dict[str, str]:
    raw = o.get(name, False)
    if raw is None:
        return {}
    m = o.nested(raw, f"{name}.")
    for k, v in m.obj.items():
        m.seen.add(k)
        if keys_are_eids and k != "*":
            m.check_eid(k, k)
        if not isinstance(v, str):
            raise m.bad(k, "an ipn:N.S or dtn://node/ EID", v)
        m.check_eid(k, v)
    return dict(m.obj)


def _scale(o: FieldReader) -> float:
    scale = o.get("scale", False)
    if scale is None:
        return 1.0
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or abs(scale) > MAX_INT:
        raise o.bad("scale", "a number > 0", scale)
    if not (math.isfinite(scale) and scale > 0):
        raise o.bad("scale", "a number > 0", scale)
    return float(scale)


def _configure(o: FieldReader) -> dict[str, Any]:
    nodes = _eid_map(o, "nodes", keys_are_eids=False)
    try:
        NodeMap(nodes)
    except InputError as e:
        raise o.error(f"field 'nodes': {e}") from None
    scale = _scale(o)
    return dict(
        node=o.string("node"),
        eid=o.eid("eid"),
        store=read_store(o),
        clas=tuple(read_cla(o, i, c) for i, c in enumerate(_list(o, "clas"))),
        contacts=tuple(_read_contact(o, i, c) for i, c in enumerate(_list(o, "contacts"))),
        nodes=nodes,
        routes=_eid_map(o, "routes", keys_are_eids=True),
        epoch_ns=o.optional_integer("epoch_ns") or 0,
        scale=scale,
        dup_window_ns=o.optional_integer("dup_window_ns", min=0),
        keys=o.optional_string("keys"),
        bundle_crc=_bundle_crc(o),
        limits=read_limits(o),
        hold=_flag(o, "hold"),
    )


def _flag(o: FieldReader, name: str) -> bool:
    v = o.get(name, False)
    if v is not None and not isinstance(v, bool):
        raise o.bad(name, "true or false", v)
    return bool(v)


def _start(o: FieldReader) -> dict[str, Any]:
    return dict(epoch_ns=o.integer("epoch_ns", min=0))


def _bundle_crc(o: FieldReader) -> str:
    crc = o.get("bundle_crc", False)
    if crc is None:
        return "crc32c"
    if crc not in BUNDLE_CRCS:
        raise o.bad("bundle_crc", " or ".join(BUNDLE_CRCS), crc)
    return str(crc)


def _payload(o: FieldReader) -> bytes | None:
    b64 = o.get("payload_b64", False)
    if b64 is None:
        return None
    if not isinstance(b64, str):
        raise o.bad("payload_b64", "a base64 string", b64)
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise o.error("field 'payload_b64' is not valid base64") from None


def _inject(o: FieldReader) -> dict[str, Any]:
    dest = o.eid("dest")
    size = o.optional_integer("size", min=0)
    if (size is None) == (o.get("payload_b64", False) is None):
        raise o.error("exactly one of 'size' and 'payload_b64' is required")
    payload = _payload(o)
    seed = o.optional_integer("seed", min=0)
    if seed is not None and payload is not None:
        raise o.error("'seed' goes with 'size', not with 'payload_b64'")
    priority = o.optional_integer("priority", min=0)
    if priority is not None and priority > 2:
        raise o.bad("priority", "0, 1 or 2", priority)
    ordinal = o.optional_integer("ordinal", min=0)
    if ordinal is not None and ordinal > MAX_ORDINAL:
        raise o.bad("ordinal", f"0..{MAX_ORDINAL}", ordinal)
    hop_limit = o.optional_integer("hop_limit", min=1)
    if hop_limit is not None and hop_limit > MAX_HOP_LIMIT:
        raise o.bad("hop_limit", f"1..{MAX_HOP_LIMIT}", hop_limit)
    return dict(
        dest=dest,
        size=size,
        payload=payload,
        seed=seed or 0,
        lifetime_ns=o.optional_integer("lifetime_ns", min=1),
        priority=1 if priority is None else priority,
        ordinal=ordinal or 0,
        tag=o.optional_string("tag"),
        hop_limit=hop_limit,
        **_security(o),
    )


def _security(o: FieldReader) -> dict[str, str | None]:
    names = {k: o.optional_string(k) for k in ("integrity", "confidentiality")}
    for k, choices in (("integrity", INTEGRITY), ("confidentiality", CONFIDENTIALITY)):
        if names[k] is not None and names[k] not in choices:
            raise o.bad(k, " or ".join(choices), names[k])
    return names


COMMANDS: dict[str, type[Command]] = {c.cmd: c for c in (Hello, Configure, Start, Inject, Status, Time, Shutdown)}
_READERS: dict[str, Callable[[FieldReader], dict[str, Any]]] = {
    "configure": _configure,
    "start": _start,
    "inject": _inject,
}


def parse_command(line: bytes | str) -> Command:
    """One control line (a trailing newline is allowed) -> the command it holds.

    Raises :class:`~hilnet.errors.ControlError` naming what is wrong: size over
    :data:`MAX_LINE` bytes, not UTF-8, not JSON, not an object, missing or
    unknown ``cmd``, an unsupported ``v``, missing, unknown or wrong-typed fields.
    """
    obj = load_line(line, "cmd")
    name = obj["cmd"]
    if name not in COMMANDS:
        raise ControlError(f"unknown cmd {name!r}; expected one of {', '.join(sorted(COMMANDS))}")
    o = FieldReader(obj, f"{name}: ", "")
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


def _configure_json(c: Configure) -> dict[str, Any]:
    d: dict[str, Any] = {"node": c.node, "eid": c.eid}
    d |= node_limits_json(c.store, c.limits)
    d["clas"] = [cla_json(k) for k in c.clas]
    d["contacts"] = [{f.name: getattr(k, f.name) for f in fields(Contact)} for k in c.contacts]
    d |= {"nodes": dict(c.nodes), "routes": dict(c.routes), "epoch_ns": c.epoch_ns, "scale": c.scale}
    if c.dup_window_ns is not None:
        d["dup_window_ns"] = c.dup_window_ns
    if c.keys is not None:
        d["keys"] = c.keys
    if c.bundle_crc != "crc32c":
        d["bundle_crc"] = c.bundle_crc
    if c.hold:
        d["hold"] = True
    return d


def _inject_json(c: Inject) -> dict[str, Any]:
    d: dict[str, Any] = {"dest": c.dest}
    if c.payload is not None:
        d["payload_b64"] = base64.b64encode(c.payload).decode("ascii")
    else:
        d |= {"size": c.size, "seed": c.seed}
    d["priority"] = c.priority
    if c.ordinal:
        d["ordinal"] = c.ordinal
    if c.lifetime_ns is not None:
        d["lifetime_ns"] = c.lifetime_ns
    if c.tag is not None:
        d["tag"] = c.tag
    if c.hop_limit is not None:
        d["hop_limit"] = c.hop_limit
    d |= {k: v for k, v in (("integrity", c.integrity), ("confidentiality", c.confidentiality)) if v is not None}
    return d


def command_json(command: Command) -> dict[str, Any]:
    """The JSON object of ``command``, as :func:`parse_command` reads it back."""
    d: dict[str, Any] = {"cmd": command.cmd, "v": PROTOCOL_VERSION}
    if command.id is not None:
        d["id"] = command.id
    if isinstance(command, Configure):
        d |= _configure_json(command)
    elif isinstance(command, Inject):
        d |= _inject_json(command)
    elif isinstance(command, Start):
        d["epoch_ns"] = command.epoch_ns
    return d


def encode_command(command: Command) -> bytes:
    """``command`` as one JSON line (UTF-8, ending in a newline), for the controller to send."""
    return dump_line(command_json(command))


def reply_to(command: Command, *, t_ns: int, node: str | None, result: Mapping[str, Any] | None = None) -> Reply:
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
