import base64
import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hilnet.agent import protocol as ctl
from hilnet.agent.cla_config import cla_json
from hilnet.agent.protocol import (
    MAX_LINE,
    Configure,
    HostPort,
    Inject,
    LtpConfig,
    MtcpConfig,
    SerialConfig,
    StoreConfig,
    TcpclConfig,
    TcpclV3Config,
    encode_command,
    encode_event,
    error_for,
    parse_command,
    parse_event,
    reply_to,
)
from hilnet.errors import ControlError
from hilnet.scenario.contact import Contact

CONFIGURE = {
    "cmd": "configure",
    "id": "c1",
    "v": 1,
    "node": "iss",
    "eid": "ipn:1.0",
    "store": {"path": "iss.sqlite", "quota_bytes": 10_000_000, "quota_bundles": 500},
    "clas": [
        {"type": "tcpcl", "listen": "127.0.0.1:4556", "peers": {"ipn:2.0": "127.0.0.1:5002"}},
        {"type": "serial", "port": "/dev/pts/7", "baud": 115200, "peer": "ipn:2.0", "delay_hint_ns": 120_000_000},
        {"type": "mtcp", "listen": "[::1]:4224", "peers": {}},
    ],
    "contacts": [
        {
            "frm": "iss",
            "to": "tdrs-w",
            "start_ns": 0,
            "end_ns": 2_280_000_000_000,
            "rate": 11520,
            "owlt_ns": 120_000_000,
        }
    ],
    "nodes": {"iss": "ipn:1.0", "tdrs-w": "ipn:2.0", "cologne": "ipn:4.0"},
    "routes": {"ipn:4.0": "ipn:2.0", "*": "ipn:2.0"},
    "epoch_ns": 123_456_789,
    "scale": 60,
    "dup_window_ns": 3_600_000_000_000,
}


def line(obj):
    return json.dumps(obj).encode() + b"\n"


def with_(base, **changes):
    out = dict(base)
    for k, v in changes.items():
        if v is ...:
            out.pop(k)
        else:
            out[k] = v
    return out


# -- every command parses --------------------------------------------------------------


@pytest.mark.parametrize(
    "name,cls", [("hello", ctl.Hello), ("status", ctl.Status), ("time", ctl.Time), ("shutdown", ctl.Shutdown)]
)
def test_simple_commands(name, cls):
    assert parse_command(f'{{"cmd": "{name}"}}') == cls()
    assert parse_command(line({"cmd": name, "id": 7, "v": 1})) == cls(id=7)
    assert parse_command(f'{{"cmd":"{name}","id":"x"}}\r\n'.encode()).id == "x"


def test_configure_parses_every_field():
    c = parse_command(line(CONFIGURE))
    assert c == Configure(
        id="c1",
        node="iss",
        eid="ipn:1.0",
        store=StoreConfig("iss.sqlite", 10_000_000, 500),
        clas=(
            TcpclConfig(HostPort("127.0.0.1", 4556), {"ipn:2.0": HostPort("127.0.0.1", 5002)}),
            SerialConfig("/dev/pts/7", 115200, "ipn:2.0", 120_000_000),
            MtcpConfig(HostPort("::1", 4224), {}),
        ),
        contacts=(Contact("iss", "tdrs-w", 0, 2_280_000_000_000, 11520, 120_000_000),),
        nodes={"iss": "ipn:1.0", "tdrs-w": "ipn:2.0", "cologne": "ipn:4.0"},
        routes={"ipn:4.0": "ipn:2.0", "*": "ipn:2.0"},
        epoch_ns=123_456_789,
        scale=60.0,
        dup_window_ns=3_600_000_000_000,
    )
    assert str(c.clas[2].listen) == "[::1]:4224"


def test_tcpcl_tls_settings_read_and_written_back():
    tls = {"tls": "require", "cert": "/etc/hilnet/n.crt", "key": "/etc/hilnet/n.key", "ca": "/etc/hilnet/ca.crt"}
    c = parse_command(line({"cmd": "configure", "node": "a", "eid": "ipn:1.0", "clas": [{"type": "tcpcl", **tls}]}))
    (cfg,) = c.clas
    assert cfg == TcpclConfig(
        None, {}, tls="require", cert="/etc/hilnet/n.crt", key="/etc/hilnet/n.key", ca="/etc/hilnet/ca.crt"
    )
    assert cla_json(cfg) == {"type": "tcpcl", "peers": {}, **tls}
    assert "tls" not in cla_json(TcpclConfig())  # off is the default and left out


def test_configure_minimal_gets_defaults():
    c = parse_command('{"cmd":"configure","node":"gs","eid":"dtn://gs/"}')
    assert c == Configure(node="gs", eid="dtn://gs/")
    assert (c.store, c.clas, c.contacts, c.epoch_ns, c.scale, c.dup_window_ns) == (None, (), (), 0, 1.0, None)


def test_null_is_the_same_as_leaving_an_optional_field_out():
    nulls = {
        k: None
        for k in ("id", "v", "store", "clas", "contacts", "nodes", "routes", "epoch_ns", "scale", "dup_window_ns")
    }
    assert parse_command(line({"cmd": "configure", "node": "gs", "eid": "ipn:4.0", **nulls})) == Configure(
        node="gs", eid="ipn:4.0"
    )


def test_inject_with_size_and_with_payload():
    c = parse_command(
        '{"cmd":"inject","id":4,"dest":"ipn:4.1","size":307200,"seed":9,"lifetime_ns":5400000000000,"priority":2,"tag":"photos#3"}'
    )
    assert c == Inject(
        id=4, dest="ipn:4.1", size=307200, seed=9, lifetime_ns=5_400_000_000_000, priority=2, tag="photos#3"
    )
    p = parse_command(line({"cmd": "inject", "dest": "ipn:4.0", "payload_b64": base64.b64encode(b"\x00hi").decode()}))
    assert p == Inject(dest="ipn:4.0", payload=b"\x00hi")
    assert (p.size, p.seed, p.priority, p.lifetime_ns, p.tag) == (None, 0, 1, None, None)
    assert (p.integrity, p.confidentiality) == (None, None)


def test_inject_and_configure_with_bpsec_round_trip():
    i = Inject(dest="ipn:4.1", size=10, integrity="hmac-sha384", confidentiality="aes256-gcm")
    assert parse_command(encode_command(i)) == i
    c = Configure(node="gs", eid="ipn:4.0", keys="/run/gs.keys")
    assert parse_command(encode_command(c)) == c
    with pytest.raises(ControlError, match="field 'integrity' must be hmac-sha256 or hmac-sha384 or hmac-sha512"):
        parse_command('{"cmd":"inject","dest":"ipn:4.1","size":1,"integrity":"md5"}')
    with pytest.raises(ControlError, match="field 'confidentiality' must be aes128-gcm or aes256-gcm, got 'aes'"):
        parse_command('{"cmd":"inject","dest":"ipn:4.1","size":1,"confidentiality":"aes"}')


# -- malformed lines: each with its exact reason ----------------------------------------

C = CONFIGURE
TCP = C["clas"][0]
MALFORMED = [
    (b"", "line is empty"),
    (b"   \n", "line is empty"),
    (b"\xff{}", "line is not UTF-8 (at byte 0)"),
    (b"{", "not JSON: Expecting property name enclosed in double quotes at column 2"),
    (b"hello", "not JSON: Expecting value at column 1"),
    (b'{"cmd":"hello"} x', "not JSON: Extra data at column 17"),
    (b'{"cmd":"time","id":NaN}', "not JSON: NaN is not allowed"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply"),
    (b'["hello"]', "not a JSON object: got array"),
    (b'"hello"', "not a JSON object: got string"),
    (b'{"cmd":"hello","cmd":"time"}', "duplicate key 'cmd'"),
    (b'{"id":1}', "missing 'cmd'"),
    (b'{"cmd":5}', "'cmd' must be a string, got integer"),
    (b'{"cmd":"fly"}', "unknown cmd 'fly'; expected one of configure, hello, inject, shutdown, start, status, time"),
    (b'{"cmd":"hello","v":2}', "hello: unsupported protocol version 2; this agent speaks 1"),
    (b'{"cmd":"hello","v":true}', "hello: unsupported protocol version true; this agent speaks 1"),
    (b'{"cmd":"hello","id":true}', "hello: field 'id' must be a string or an integer, got boolean"),
    (b'{"cmd":"hello","id":1.5}', "hello: field 'id' must be a string or an integer, got 1.5"),
    (b'{"cmd":"status","verbose":1}', "status: unknown field 'verbose'"),
    (line(with_(C, node=...)), "configure: missing field 'node'"),
    (line(with_(C, node=3)), "configure: field 'node' must be a non-empty string, got 3"),
    (line(with_(C, eid="ipn:x")), "configure: field 'eid' must be an ipn:N.S or dtn://node/ EID, got 'ipn:x'"),
    (line(with_(C, stor={})), "configure: unknown field 'stor'"),
    (line(with_(C, store=[])), "configure: field 'store' must be an object, got array"),
    (line(with_(C, store={"quota_bytes": 1})), "configure: missing field 'store.path'"),
    (
        line(with_(C, store={"path": "p", "quota_bytes": -1})),
        "configure: field 'store.quota_bytes' must be an integer >= 0, got -1",
    ),
    (
        line(with_(C, store={"path": "p", "quota_bytes": "1MiB"})),
        "configure: field 'store.quota_bytes' must be an integer >= 0, got '1MiB'",
    ),
    (line(with_(C, store={"path": "p", "qouta_bundles": 1})), "configure: unknown field 'store.qouta_bundles'"),
    (line(with_(C, clas={})), "configure: field 'clas' must be an array, got object"),
    (
        line(with_(C, clas=[{"type": "udp"}])),
        "configure: field 'clas[0].type' must be one of ltp, mtcp, serial, tcpcl, tcpclv3, got 'udp'",
    ),
    (line(with_(C, clas=[{}])), "configure: missing field 'clas[0].type'"),
    (
        line(with_(C, clas=[with_(TCP, tls="on")])),
        "configure: field 'clas[0].tls' must be one of off, enable, require, got 'on'",
    ),
    (line(with_(C, clas=[with_(TCP, tls="require")])), "configure: missing field 'clas[0].cert'"),
    (
        line(with_(C, clas=[TCP, with_(TCP, listen="localhost")])),
        "configure: field 'clas[1].listen' must be HOST:PORT, got 'localhost'",
    ),
    (
        line(with_(C, clas=[with_(TCP, listen="h:70000")])),
        "configure: field 'clas[0].listen' must be HOST:PORT, got 'h:70000'",
    ),
    (
        line(with_(C, clas=[with_(TCP, peers={"ipn:2.0": 5002})])),
        "configure: field 'clas[0].peers.ipn:2.0' must be HOST:PORT, got 5002",
    ),
    (
        line(with_(C, clas=[with_(TCP, peers={"two": "h:1"})])),
        "configure: field 'clas[0].peers.two' must be an ipn:N.S or dtn://node/ EID, got 'two'",
    ),
    (
        line(with_(C, clas=[{"type": "serial", "port": "/dev/x", "baud": 0, "peer": "ipn:2.0"}])),
        "configure: field 'clas[0].baud' must be an integer >= 1, got 0",
    ),
    (
        line(with_(C, clas=[{"type": "serial", "port": "/dev/x", "baud": 9600}])),
        "configure: missing field 'clas[0].peer'",
    ),
    (
        line(with_(C, clas=[{"type": "serial", "port": "/dev/x", "baud": 9600, "peer": "ipn:2.0", "parity": "N"}])),
        "configure: unknown field 'clas[0].parity'",
    ),
    (
        line(with_(C, contacts=[{"frm": "a", "to": "b", "start_ns": 5, "end_ns": 4, "rate": 1, "owlt_ns": 0}])),
        "configure: field 'contacts[0].end_ns' must be an integer >= 5, got 4",
    ),
    (
        line(with_(C, contacts=[{"frm": "a", "to": "b", "start_ns": 0, "end_ns": 4, "rate": 0, "owlt_ns": 0}])),
        "configure: field 'contacts[0].rate' must be an integer >= 1, got 0",
    ),
    (
        line(with_(C, contacts=[{"frm": "a", "to": "b", "start_ns": 0, "end_ns": 4, "rate": 1}])),
        "configure: missing field 'contacts[0].owlt_ns'",
    ),
    (
        line(with_(C, contacts=[{"frm": "a", "to": "b", "start_ns": 0.5, "end_ns": 4, "rate": 1, "owlt_ns": 0}])),
        "configure: field 'contacts[0].start_ns' must be an integer >= 0, got 0.5",
    ),
    (
        line(with_(C, nodes={"iss": "ipn:1.0", "iss2": "ipn:1.1"})),
        "configure: field 'nodes': nodes 'iss' and 'iss2' share the node id ipn:1.0",
    ),
    (line(with_(C, nodes={"iss": 1})), "configure: field 'nodes.iss' must be an ipn:N.S or dtn://node/ EID, got 1"),
    (
        line(with_(C, routes={"ipn:4.0": "tdrs"})),
        "configure: field 'routes.ipn:4.0' must be an ipn:N.S or dtn://node/ EID, got 'tdrs'",
    ),
    (
        line(with_(C, routes={"cologne": "ipn:2.0"})),
        "configure: field 'routes.cologne' must be an ipn:N.S or dtn://node/ EID, got 'cologne'",
    ),
    (line(with_(C, scale=0)), "configure: field 'scale' must be a number > 0, got 0"),
    (line(with_(C, scale="60")), "configure: field 'scale' must be a number > 0, got '60'"),
    (
        b'{"cmd":"configure","node":"a","eid":"ipn:1.0","scale":1e999}',
        "configure: field 'scale' must be a number > 0, got inf",
    ),
    (line(with_(C, epoch_ns="5")), "configure: field 'epoch_ns' must be an integer, got '5'"),
    (line(with_(C, epoch_ns=False)), "configure: field 'epoch_ns' must be an integer, got boolean"),
    (b'{"cmd":"inject","size":1}', "inject: missing field 'dest'"),
    (b'{"cmd":"inject","dest":"ipn:4.0"}', "inject: exactly one of 'size' and 'payload_b64' is required"),
    (
        b'{"cmd":"inject","dest":"ipn:4.0","size":1,"payload_b64":"AA=="}',
        "inject: exactly one of 'size' and 'payload_b64' is required",
    ),
    (b'{"cmd":"inject","dest":"ipn:4.0","payload_b64":"A*=="}', "inject: field 'payload_b64' is not valid base64"),
    (
        b'{"cmd":"inject","dest":"ipn:4.0","payload_b64":7}',
        "inject: field 'payload_b64' must be a base64 string, got 7",
    ),
    (
        b'{"cmd":"inject","dest":"ipn:4.0","payload_b64":"AA==","seed":1}',
        "inject: 'seed' goes with 'size', not with 'payload_b64'",
    ),
    (b'{"cmd":"inject","dest":"ipn:4.0","size":-1}', "inject: field 'size' must be an integer >= 0, got -1"),
    (b'{"cmd":"inject","dest":"ipn:4.0","size":true}', "inject: field 'size' must be an integer >= 0, got boolean"),
    (b'{"cmd":"inject","dest":"ipn:4.0","size":1,"priority":3}', "inject: field 'priority' must be 0, 1 or 2, got 3"),
    (
        b'{"cmd":"inject","dest":"ipn:4.0","size":1,"lifetime_ns":0}',
        "inject: field 'lifetime_ns' must be an integer >= 1, got 0",
    ),
    (b'{"cmd":"inject","dest":"ipn:4.0","size":1,"tag":""}', "inject: field 'tag' must be a non-empty string, got ''"),
    (
        b'{"cmd":"inject","dest":"cologne","size":1}',
        "inject: field 'dest' must be an ipn:N.S or dtn://node/ EID, got 'cologne'",
    ),
]


@pytest.mark.parametrize("raw,reason", MALFORMED, ids=[r for _, r in MALFORMED])
def test_malformed_line_reason(raw, reason):
    with pytest.raises(ControlError) as e:
        parse_command(raw)
    assert str(e.value) == reason
    # the same line as text gives the same reason (UTF-8 errors only exist in bytes)
    if raw != b"\xff{}":
        with pytest.raises(ControlError) as e2:
            parse_command(raw.decode())
        assert str(e2.value) == reason


def test_oversize_line_is_refused_before_parsing():
    pad = "x" * (MAX_LINE - len('{"cmd":"hello","id":""}'))
    ok = '{"cmd":"hello","id":"' + pad + '"}'
    assert len(ok.encode()) == MAX_LINE
    assert parse_command(ok + "\n").id == pad
    for big in (ok.replace('"id":"', '"id":"y'), (ok.replace('"id":"', '"id":"y') + "\n").encode()):
        with pytest.raises(ControlError, match=rf"^line is longer than {MAX_LINE} bytes$"):
            parse_command(big)
    # multi-byte characters count as bytes, not characters
    with pytest.raises(ControlError, match="longer"):
        parse_command('{"cmd":"hello","id":"' + "é" * (MAX_LINE // 2) + '"}')


# -- commands round trip through the controller's encoder ------------------------------


COMMANDS = [
    ctl.Hello(id=1),
    ctl.Status(),
    ctl.Time(id="t"),
    ctl.Shutdown(id=9),
    parse_command(line(CONFIGURE)),
    Configure(node="gs", eid="ipn:4.0"),
    Configure(node="gs", eid="ipn:4.0", hold=True),
    ctl.Start(id="go", epoch_ns=81_234_567_890),
    Configure(
        node="gs",
        eid="ipn:4.0",
        store=StoreConfig("gs.sqlite"),
        clas=(
            TcpclConfig(),
            MtcpConfig(HostPort("0.0.0.0", 4224), {"ipn:1.0": HostPort("fe80::1", 4224)}),
            TcpclV3Config(HostPort("0.0.0.0", 4557), {"ipn:9.0": HostPort("10.0.0.9", 4556)}, keepalive_s=15),
            SerialConfig("/dev/ttyUSB0", 9600, "ipn:2.0", bits_per_byte=11),
            SerialConfig("/dev/ttyAMA0", 921600, "ipn:3.0", rtscts=True),
            LtpConfig(HostPort("0.0.0.0", 1113), {"ipn:5.0": HostPort("10.0.0.5", 1113)}, None, {}, {"max_retries": 3}),
        ),
        scale=0.5,
        limits=ctl.Limits(memory_bytes=1 << 20, max_connections=100, transfer_timeout_ns=5 * 10**9),
    ),
    Inject(dest="ipn:4.0", size=10, seed=3, tag="photos#1", lifetime_ns=10),
    Inject(id="i", dest="ipn:4.0", payload=b"\x01\x02", priority=0),
    Inject(dest="ipn:4.0", size=1, hop_limit=255),
]


def _concrete(base: type) -> set[type]:
    """Every class below ``base`` that names a message (a subclass added later included)."""
    out = set()
    for sub in base.__subclasses__():
        # dataclass(slots=True) makes a new class; the one it replaced may linger in __subclasses__()
        if getattr(sys.modules[sub.__module__], sub.__qualname__, None) is sub:
            out |= {sub} | _concrete(sub)
    return out


def test_every_command_class_is_registered_and_covered():
    classes = _concrete(ctl.Command)
    assert {c.cmd: c for c in classes} == ctl.COMMANDS
    assert {type(c) for c in COMMANDS} == classes


def test_every_cla_config_class_is_covered():
    covered = {type(k) for c in COMMANDS if isinstance(c, Configure) for k in c.clas}
    assert covered == set(ctl.ClaConfig.__args__)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.cmd}-{i}" for i, c in enumerate(COMMANDS)])
def test_commands_round_trip(command):
    encoded = encode_command(command)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1
    parsed = parse_command(encoded)
    assert parsed == command and type(parsed) is type(command)
    assert encode_command(parsed) == encoded  # parse -> encode gives the same line back


# -- events ------------------------------------------------------------------------------

EVENTS = [
    ctl.Ready(t_ns=1, node=None, version="0.1.0", pid=42),
    ctl.Reply(t_ns=2, node="iss", cmd="hello", id=1, result={"version": 1, "node": "iss", "pid": 42, "time_ns": 2}),
    ctl.Reply(t_ns=2, node="iss", cmd="shutdown"),
    ctl.Error(t_ns=3, node="iss", reason="unknown cmd 'x'", line='{"cmd":"x"}'),
    ctl.Received(
        t_ns=4,
        node="tdrs-w",
        bundle="ipn:1.0/1700000000000/3",
        source="ipn:1.0",
        dest="ipn:4.0",
        size=307200,
        peer="ipn:1.0",
        cla="serial",
    ),
    ctl.Stored(
        t_ns=5,
        node="tdrs-w",
        bundle="ipn:1.0/1700000000000/3",
        size=307200,
        store_bundles=1,
        store_bytes=307400,
        tag="photos#3",
    ),
    ctl.Forwarded(t_ns=6, node="tdrs-w", bundle="ipn:1.0/1/3/0/1000", to="ipn:4.0", cla="tcpcl", size=1000),
    ctl.Acked(t_ns=7, node="tdrs-w", bundle="ipn:1.0/1/3", by="ipn:4.0", cla="tcpcl"),
    ctl.Sent(t_ns=7, node="tdrs-w", bundle="ipn:1.0/1/6", to="ipn:5.0", cla="mtcp"),
    ctl.Delivered(
        t_ns=8,
        node="cologne",
        bundle="ipn:1.0/1/3",
        source="ipn:1.0",
        dest="ipn:4.1",
        size=3,
        sha256="ab" * 32,
        tag="photos#3",
    ),
    ctl.Expired(t_ns=9, node="iss", bundle="ipn:1.0/1/4"),
    ctl.Refused(t_ns=10, node="iss", reason="store full", peer="ipn:2.0"),
    ctl.Dropped(t_ns=11, node="iss", bundle="ipn:1.0/1/5", reason="duplicate"),
    ctl.SecurityFailed(
        t_ns=12,
        node="cologne",
        bundle="ipn:1.0/1/6",
        source="ipn:1.0",
        check="bib-mismatch",
        reason="BIB 2 from ipn:1.0: the HMAC of block 1 does not match",
    ),
    ctl.NoRoute(t_ns=11, node="iss", bundle="ipn:1.0/1/6", dest="ipn:9.1", reason="no contact plan"),
    ctl.SessionUp(t_ns=13, node="iss", peer="ipn:2.0", cla="tcpcl", detail={"keepalive_s": 10}),
    ctl.SessionDown(t_ns=14, node="iss", peer="ipn:2.0", cla="tcpcl", reason="idle timeout"),
    ctl.TlsFailed(
        t_ns=14,
        node="iss",
        cla="tcpcl",
        reason="TLS: peer claims node id ipn:2.0 but its certificate is for ipn:3.0",
        peer="ipn:2.0",
        certified="ipn:3.0",
        address="10.77.0.2:4556",
    ),
    ctl.Rejected(t_ns=15, node="iss", cla="serial", reason="crc mismatch at frame 17"),
    ctl.Log(t_ns=16, node="iss", level="info", message="configured: 3 contacts ✓"),
    ctl.Limit(t_ns=17, node="iss", cla="mtcp", limit="connections", detail="960 open", peer="10.0.0.9:40112"),
    ctl.Limit(t_ns=18, node="iss", cla="tcpcl", limit="memory", detail="transfer 3", suppressed=41),
]


def test_every_event_class_is_registered_and_covered():
    classes = _concrete(ctl.Event)
    assert {e.kind: e for e in classes} == ctl.EVENTS
    assert {type(e) for e in EVENTS} == classes


@pytest.mark.parametrize("event", EVENTS, ids=[e.kind for e in EVENTS])
def test_events_round_trip(event):
    encoded = encode_event(event)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1
    obj = json.loads(encoded)
    assert list(obj)[:3] == ["event", "t_ns", "node"] and obj["event"] == event.kind
    assert None not in [v for k, v in obj.items() if k != "node"]  # optional Nones are left out
    parsed = parse_event(encoded)
    assert parsed == event and type(parsed) is type(event)
    assert encode_event(parsed) == encoded  # parse -> encode gives the same line back


@given(
    t=st.integers(min_value=0, max_value=2**63),
    text=st.text(),
    tag=st.none() | st.text(min_size=1),
    ident=st.none() | st.integers() | st.text(),
)
def test_event_text_survives_any_unicode(t, text, tag, ident):
    for e in (
        ctl.Log(t_ns=t, node=text, level="info", message=text),
        ctl.Expired(t_ns=t, node=None, bundle=text, tag=tag),
        ctl.Error(t_ns=t, node="n", reason=text, id=ident),
    ):
        assert parse_event(encode_event(e)) == e


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b'{"event":"teleported","t_ns":1}', "unknown event 'teleported'"),
        (b'{"t_ns":1}', "missing 'event'"),
        (b'{"event":"log","t_ns":1,"level":"info"}', "log: missing field 'message'"),
        (b'{"event":"log","t_ns":"1","level":"info","message":"m"}', "log: field 't_ns' must be an integer, got '1'"),
        (b'{"event":"log","t_ns":1,"level":"info","message":"m","x":1}', "log: unknown field 'x'"),
        (b'{"event":"reply","t_ns":1,"cmd":"hello","result":[]}', "reply: field 'result' must be an object, got array"),
    ],
)
def test_malformed_events(raw, reason):
    with pytest.raises(ControlError) as e:
        parse_event(raw)
    assert str(e.value) == reason


def test_reply_to_echoes_the_id():
    r = reply_to(ctl.Time(id="q7"), t_ns=5, node="iss", result={"time_ns": 5, "realtime_ns": 17})
    assert r == ctl.Reply(t_ns=5, node="iss", cmd="time", id="q7", result={"time_ns": 5, "realtime_ns": 17})


def test_error_for_quotes_the_line_and_echoes_id():
    raw = b'{"cmd":"inject","id":12,"dest":"nowhere","size":1}\n'
    with pytest.raises(ControlError) as e:
        parse_command(raw)
    err = error_for(raw, e.value, t_ns=3, node="iss")
    assert err == ctl.Error(
        t_ns=3,
        node="iss",
        id=12,
        cmd="inject",
        reason="inject: field 'dest' must be an ipn:N.S or dtn://node/ EID, got 'nowhere'",
        line='{"cmd":"inject","id":12,"dest":"nowhere","size":1}',
    )
    long_junk = b"\xff" + b"z" * 5000
    err = error_for(long_junk, ControlError("line is not UTF-8 (at byte 0)"), t_ns=1, node=None)
    assert len(err.line) == ctl.LINE_EXCERPT and err.line.endswith("...") and err.id is None
    assert parse_event(encode_event(err)) == err


def test_serial_cla_carries_its_framing_for_pacing():
    from hilnet.agent.cla.serial_timing import LinkTiming

    line = (
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","clas":[{"type":"serial","port":"/tmp/p",'
        '"baud":115200,"peer":"ipn:2.0","bits_per_byte":11}]}'
    )
    cla = parse_command(line).clas[0]
    assert cla.bits_per_byte == 11
    assert parse_command(encode_command(parse_command(line))).clas[0].bits_per_byte == 11
    # 8N2 carries 1/11 of the baud in bytes: a CLA pacing at 8N1 would overrun the line by 10 %
    assert LinkTiming(115200, 11).wire_ns(11_520) == 1_100_000_000
    with pytest.raises(ControlError, match="bits_per_byte"):
        parse_command(line.replace('"bits_per_byte":11', '"bits_per_byte":40'))
