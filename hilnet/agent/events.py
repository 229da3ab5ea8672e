"""The agent's events: what it writes on stdout, one JSON line each (docs/control.md).

Imported through :mod:`hilnet.agent.protocol`, with the commands.

Every event is ``{"event": kind, "t_ns": agent clock, "node": name, ...}``;
:func:`encode_event` writes one and :func:`parse_event` (the controller's side)
reads one back, as strictly as commands are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, NoReturn

from hilnet.agent.jsonlines import PROTOCOL_VERSION, FieldReader, Id, dump_line, load_line
from hilnet.errors import ControlError

# -- events ------------------------------------------------------------------------------
#
# Every event is {"event": kind, "t_ns": agent clock, "node": name, ...fields}. Optional
# fields that are None are left out of the line, and read back as None.


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event: ``t_ns`` is the agent's monotonic clock, ``node`` its name (None before configure)."""

    kind: ClassVar[str] = ""
    t_ns: int
    node: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready(Event):
    """The agent is up and reads commands (first line it writes)."""

    kind: ClassVar[str] = "ready"
    protocol: int = PROTOCOL_VERSION
    version: str
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply(Event):
    """Answer to command ``cmd`` with id ``id``; ``result`` is per command (docs/control.md)."""

    kind: ClassVar[str] = "reply"
    cmd: str
    id: Id = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Event):
    """A command that failed: ``reason``; ``line`` quotes the start of a malformed line."""

    kind: ClassVar[str] = "error"
    reason: str
    id: Id = None
    cmd: str | None = None
    line: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Received(Event):
    """A bundle came in from neighbour ``peer`` over CLA ``cla`` (or was injected: both None)."""

    kind: ClassVar[str] = "received"
    bundle: str
    source: str
    dest: str
    size: int
    peer: str | None = None
    cla: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored(Event):
    """A bundle is committed to the store; the store then holds ``store_bundles``/``store_bytes``."""

    kind: ClassVar[str] = "stored"
    bundle: str
    size: int
    store_bundles: int
    store_bytes: int
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Forwarded(Event):
    """A bundle was sent whole to next hop ``to`` (not yet acknowledged)."""

    kind: ClassVar[str] = "forwarded"
    bundle: str
    to: str
    cla: str
    size: int
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Acked(Event):
    """Next hop ``by`` acknowledged a bundle (it committed it): the local copy may go."""

    kind: ClassVar[str] = "acked"
    bundle: str
    by: str
    cla: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent(Event):
    """A CLA without acknowledgements (MTCP) handed a bundle whole to ``to``; the local copy went.

    Not ``acked``: nothing says the next hop stored it, so a loss after it is the CLA's.
    """

    kind: ClassVar[str] = "sent"
    bundle: str
    to: str
    cla: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered(Event):
    """A bundle reached its destination application here; ``sha256`` of its payload (hex)."""

    kind: ClassVar[str] = "delivered"
    bundle: str
    source: str
    dest: str
    size: int
    sha256: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Expired(Event):
    """A bundle's lifetime ran out while stored here; it was removed."""

    kind: ClassVar[str] = "expired"
    bundle: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(Event):
    """A bundle was not taken (store full, inject refused): the sender keeps its copy."""

    kind: ClassVar[str] = "refused"
    reason: str
    bundle: str | None = None
    peer: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Dropped(Event):
    """A bundle was discarded for ``reason`` (a duplicate, hop limit...)."""

    kind: ClassVar[str] = "dropped"
    bundle: str
    reason: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityFailed(Event):
    """A bundle for this node failed its BPSec check (RFC 9172) and was dropped, never delivered.

    ``check`` names what failed (``bib-mismatch``, ``bcb-tag-mismatch``,
    ``key-unwrap-failed``, ``no-key``, ``malformed-block``...); ``reason`` says
    which block and security source.
    """

    kind: ClassVar[str] = "security-failed"
    bundle: str
    source: str
    check: str
    reason: str
    tag: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoRoute(Event):
    """Stored ``bundle`` for ``dest`` has no next hop (no contact, no route names one); it stays stored."""

    kind: ClassVar[str] = "no-route"
    bundle: str
    dest: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUp(Event):
    """A CLA session to ``peer`` can carry bundles."""

    kind: ClassVar[str] = "session-up"
    peer: str
    cla: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDown(Event):
    """A CLA session to ``peer`` ended for ``reason``."""

    kind: ClassVar[str] = "session-down"
    peer: str
    cla: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFailed(Event):
    """A CLA session's TLS negotiation failed or was refused for ``reason``: no session came up.

    ``peer`` is the node id the peer claimed (or the one we meant to reach),
    ``certified`` the node ids its certificate carries (comma separated), ``address`` its host:port.
    """

    kind: ClassVar[str] = "tls-failed"
    cla: str
    reason: str
    peer: str | None = None
    certified: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected(Event):
    """Malformed input from a CLA (bad frame, bad bundle) was rejected for ``reason``."""

    kind: ClassVar[str] = "rejected"
    cla: str
    reason: str
    peer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit(Event):
    """One of the agent's limits (docs/cla.md, "Limits") refused a transfer or a connection, or ended one.

    ``limit`` is memory, connections, idle, partial, transfer, sessions or block; ``peer`` the
    node id or address; ``suppressed`` how many hits of the same limit on the
    same CLA went unreported in the second before this one.
    """

    kind: ClassVar[str] = "limit"
    cla: str
    limit: str
    detail: str
    peer: str | None = None
    suppressed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Log(Event):
    """A log line: ``level`` is debug, info, warning or error."""

    kind: ClassVar[str] = "log"
    level: str
    message: str


EVENTS: dict[str, type[Event]] = {
    e.kind: e
    for e in (
        Ready,
        Reply,
        Error,
        Received,
        Stored,
        Forwarded,
        Acked,
        Sent,
        Delivered,
        Expired,
        Refused,
        Dropped,
        SecurityFailed,
        NoRoute,
        SessionUp,
        SessionDown,
        TlsFailed,
        Rejected,
        Limit,
        Log,
    )
}

# annotation text -> (check, description); the only field types events use
_EVENT_TYPES: dict[str, tuple[Any, str]] = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string"),
    "Id": (lambda v: v is None or (isinstance(v, (str, int)) and not isinstance(v, bool)), "a string or an integer"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "an object"),
}


def event_json(event: Event) -> dict[str, Any]:
    """The JSON object of ``event`` (None-valued optional fields left out)."""
    d: dict[str, Any] = {"event": event.kind}
    for name, _required, _check, _want in _rules(type(event)):
        v = getattr(event, name)
        if v is not None or name == "node":
            d[name] = v
    return d


def encode_event(event: Event) -> bytes:
    """``event`` as one JSON line (UTF-8, ending in a newline)."""
    return dump_line(event_json(event))


def parse_event(line: bytes | str) -> Event:
    """One line an agent wrote -> its event; ControlError when it is not one (controller side)."""
    obj = load_line(line, "event")
    kind = obj["event"]
    cls = EVENTS.get(kind)
    if cls is None:
        raise ControlError(f"unknown event {kind!r}")
    # The controller reads every line every agent writes: check the common,
    # well-formed case in one pass over precomputed field rules, and only on
    # a mismatch walk the fields again to say exactly what is wrong.
    values: dict[str, Any] = {}
    for name, required, check, _want in _rules(cls):
        if name in obj:
            v = obj[name]
            if not check(v):
                _explain(obj, kind, cls)
            values[name] = v
        elif required:
            _explain(obj, kind, cls)
    if len(values) + 1 != len(obj):  # a field the event does not have
        _explain(obj, kind, cls)
    return cls(**values)


_Rules = tuple[tuple[str, bool, Callable[[Any], bool], str], ...]
_RULES: dict[type[Event], _Rules] = {}


def _rules(cls: type[Event]) -> _Rules:
    """(field, required, type check, what it expects) of each field of ``cls``, worked out once."""
    rules = _RULES.get(cls)
    if rules is None:
        rules = tuple(
            (f.name, f.default is f.default_factory is MISSING, *_EVENT_TYPES[str(f.type)]) for f in fields(cls)
        )
        _RULES[cls] = rules
    return rules


def _explain(obj: dict[str, Any], kind: str, cls: type[Event]) -> NoReturn:
    """Raise the ControlError that names the first field of ``obj`` that breaks ``cls``."""
    o = FieldReader(obj, f"{kind}: ", "")
    o.seen.add("event")
    for name, required, check, want in _rules(cls):
        v = o.get(name, required)
        if name in obj and not check(v):
            raise o.bad(name, want, v)
    o.finish()
    raise ControlError(f"{kind}: does not match its event")  # unreachable while the rules agree
