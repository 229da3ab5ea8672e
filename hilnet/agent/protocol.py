"""The control protocol between the controller and an agent: the one module both sides import.

Commands go to the agent on its stdin, events come back on its stdout, one
JSON line each (docs/control.md; :data:`PROTOCOL_VERSION` is its version).
The agent reads with :func:`parse_command` and writes with :func:`encode_event`;
the controller writes with :func:`encode_command` and reads with
:func:`parse_event`. Both directions are strict: unknown fields, duplicate keys,
NaN and wrong types are errors (:class:`~hilnet.errors.ControlError`), so a bug
on either side shows up as an ``error`` event, not as a silently different run.

The definitions live by concept in :mod:`hilnet.agent.control` (commands),
:mod:`hilnet.agent.events` (events), :mod:`hilnet.agent.cla_config` (the CLA
entries of ``configure``) and :mod:`hilnet.agent.jsonlines` (the line format);
this module is their public face, and the only one code outside them imports.
"""

from hilnet.agent.cla_config import (
    ClaConfig,
    HostPort,
    LtpConfig,
    MtcpConfig,
    SerialConfig,
    TcpclConfig,
    TcpclV3Config,
)
from hilnet.agent.control import (
    BUNDLE_CRCS,
    COMMANDS,
    Command,
    Configure,
    Hello,
    Inject,
    Limits,
    Shutdown,
    Start,
    Status,
    StoreConfig,
    Time,
    command_json,
    encode_command,
    error_for,
    parse_command,
    reply_to,
)
from hilnet.agent.events import (
    EVENTS,
    Acked,
    Delivered,
    Dropped,
    Error,
    Event,
    Expired,
    Forwarded,
    Limit,
    Log,
    NoRoute,
    Ready,
    Received,
    Refused,
    Rejected,
    Reply,
    SecurityFailed,
    Sent,
    SessionDown,
    SessionUp,
    Stored,
    TlsFailed,
    encode_event,
    event_json,
    parse_event,
)
from hilnet.agent.jsonlines import LINE_EXCERPT, MAX_LINE, PROTOCOL_VERSION, Id, OversizeLine, read_lines_sync

__all__ = [
    # the line format
    "PROTOCOL_VERSION",
    "MAX_LINE",
    "LINE_EXCERPT",
    "Id",
    "OversizeLine",
    "read_lines_sync",
    # commands (controller -> agent)
    "Command",
    "Hello",
    "Configure",
    "Start",
    "Inject",
    "Status",
    "Time",
    "Shutdown",
    "COMMANDS",
    "BUNDLE_CRCS",
    "StoreConfig",
    "Limits",
    "parse_command",
    "encode_command",
    "command_json",
    # the CLA entries of configure
    "ClaConfig",
    "LtpConfig",
    "HostPort",
    "TcpclConfig",
    "TcpclV3Config",
    "MtcpConfig",
    "SerialConfig",
    # events (agent -> controller)
    "Event",
    "Ready",
    "Reply",
    "Error",
    "Received",
    "Stored",
    "Forwarded",
    "Acked",
    "Sent",
    "Delivered",
    "Expired",
    "Refused",
    "Dropped",
    "SecurityFailed",
    "NoRoute",
    "SessionUp",
    "SessionDown",
    "TlsFailed",
    "Rejected",
    "Limit",
    "Log",
    "EVENTS",
    "parse_event",
    "encode_event",
    "event_json",
    "reply_to",
    "error_for",
]
