"""BPSec between agents: the source adds BIB/BCB, a relay forwards them unchanged, the
destination decrypts and verifies before delivery, and a failure is a ``security-failed``
event, never a delivery. Three agents joined in-process, on a virtual clock."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from agent_test_fakes import MS, Node, PairCla, S, connect

from hilnet.agent import protocol as ev
from hilnet.agent.config import AgentConfig
from hilnet.agent.security import load_keyring
from hilnet.bundle.blocks import BlockType
from hilnet.bundle.bpsec import KeyRing, Protection, format_keys
from hilnet.bundle.codec import decode_bundle
from hilnet.clock import VirtualClock
from hilnet.errors import KeyFileError, SecurityError

T0 = 1_000 * S
REAL0 = time.time_ns() - T0
RING = KeyRing(
    {"ipn:1.0": os.urandom(32)},
    {"ipn:1.0": os.urandom(32)},
)
BOTH = Protection.named("hmac-sha384", "aes256-gcm")
SECRET = b"crew photo, not for relays " * 40


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def keyfile(tmp_path, name: str, ring: KeyRing) -> str:
    path = tmp_path / f"{name}.keys"
    path.write_text(format_keys(ring))
    path.chmod(0o600)
    return str(path)


async def chain(tmp_path, dest_ring: KeyRing):
    """a (ipn:1.0) -> b (ipn:2.0, no keys) -> c (ipn:3.0, dest_ring); returns the three Nodes."""
    clock = VirtualClock(T0)
    nodes = []
    for name, eid, route, ring in (
        ("a", "ipn:1.0", "ipn:2.0", RING),
        ("b", "ipn:2.0", "ipn:3.0", None),
        ("c", "ipn:3.0", None, dest_ring),
    ):
        n = Node(clock, REAL0)
        cfg = AgentConfig(
            node=name,
            eid=eid,
            store_path=str(tmp_path / f"{name}.sqlite"),
            routes={"*": route} if route else {},
            keys_path=keyfile(tmp_path, name, ring) if ring is not None else None,
        )
        nodes.append(await n.configure(cfg, fake=False))
    a, b, c = nodes
    connect(a.agent, PairCla("pair", "ipn:1.0"), b.agent, PairCla("pair", "ipn:2.0"))
    connect(b.agent, PairCla("pair2", "ipn:2.0"), c.agent, PairCla("pair2", "ipn:3.0"))
    return a, b, c


def spy(link: PairCla) -> list[bytes]:
    """The bundles ``link`` sends from now on."""
    seen: list[bytes] = []
    send = link.send

    async def watched(peer, data, **kw):
        seen.append(data)
        await send(peer, data, **kw)

    link.send = watched
    return seen


def test_integrity_and_confidentiality_end_to_end(tmp_path):
    async def main():
        a, b, c = await chain(tmp_path, RING)
        got: list[bytes] = []
        c.agent.subscribe("ipn:3.1", lambda key, payload: got.append(payload))
        first_hop, relayed = spy(a.agent.clas[0]), spy(b.agent.clas[1])  # what a sends, what b sends on
        try:
            key = await a.agent.submit("ipn:3.1", SECRET, 3600 * S, protection=BOTH)
            await c.until(lambda: got, step_ns=10 * MS)
            assert got == [SECRET]
            delivered = c.of(ev.Delivered)[0]
            assert delivered.bundle == key and delivered.size == len(SECRET)
            # on the way: encrypted, with both blocks; the relay checked nothing and changed no security block
            assert SECRET[:20] not in first_hop[0] and SECRET[:20] not in relayed[0]
            sent, passed_on = decode_bundle(first_hop[0]), decode_bundle(relayed[0])
            for t in (BlockType.BLOCK_INTEGRITY, BlockType.BLOCK_CONFIDENTIALITY):
                assert sent.block(t) is not None and passed_on.block(t) == sent.block(t)
            assert passed_on.payload == sent.payload
            assert not b.of(ev.SecurityFailed) and not c.of(ev.SecurityFailed)
        finally:
            for n in (a, b, c):
                await n.agent.stop()

    run(main())


@pytest.mark.parametrize(
    ("protection", "check"),
    [(BOTH, "key-unwrap-failed"), (Protection.named("hmac-sha256", None), "bib-mismatch")],
)
def test_a_wrong_key_at_the_destination_drops_with_an_event(tmp_path, protection, check):
    wrong = KeyRing({"ipn:1.0": os.urandom(32)}, {"ipn:1.0": os.urandom(32)})

    async def main():
        a, b, c = await chain(tmp_path, wrong)
        got: list[bytes] = []
        c.agent.subscribe("ipn:3.1", lambda key, payload: got.append(payload))
        try:
            key = await a.agent.submit("ipn:3.1", SECRET, 3600 * S, protection=protection)
            await c.until(lambda: c.of(ev.SecurityFailed), step_ns=10 * MS)
            failed = c.of(ev.SecurityFailed)[0]
            assert failed.bundle == key and failed.check == check and failed.source == "ipn:1.0"
            assert "ipn:1.0" in failed.reason
            await c.idle()
            assert got == [] and not c.of(ev.Delivered)
            assert not c.agent.store.contains(key)
            assert c.agent.counters[f"security-failed:{check}"] == 1
            assert not a.agent.store.contains(key)  # the hop acknowledged it: dropped, not retried
        finally:
            for n in (a, b, c):
                await n.agent.stop()

    run(main())


def test_a_source_without_its_key_refuses_to_send(tmp_path):
    async def main():
        n = Node(VirtualClock(T0), REAL0)
        await n.configure(AgentConfig(node="x", eid="ipn:9.0", store_path=str(tmp_path / "x.sqlite")))
        try:
            with pytest.raises(SecurityError, match="no integrity key for security source ipn:9.0"):
                await n.agent.submit("ipn:3.1", b"x", S, protection=BOTH)
            assert n.agent.store.count() == 0
        finally:
            await n.agent.stop()

    run(main())


def test_key_file_errors_name_the_place(tmp_path):
    bad = tmp_path / "bad.keys"
    bad.write_text("# keys\nipn:1.0 integrity zz\n")
    with pytest.raises(KeyFileError, match=r"bad.keys:2:19: the key must be hexadecimal"):
        load_keyring(str(bad))
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keyring(str(tmp_path / "missing.keys"))
    assert load_keyring(None) == KeyRing()


def test_a_node_file_names_its_key_file_relative_to_itself(tmp_path):
    from hilnet.commands.agent import load_agent_config

    (tmp_path / "etc").mkdir()
    node = tmp_path / "etc" / "node.yaml"
    node.write_text('node: n1\neid: ipn:7.0\nkeys: n1.keys\nclas: [{type: tcpcl, listen: "127.0.0.1:0"}]\n')
    assert load_agent_config(str(node), None).keys_path == str(tmp_path / "etc" / "n1.keys")


def test_a_bad_key_file_stops_a_standalone_agent_with_file_line_col(tmp_path):
    import subprocess
    import sys

    node = tmp_path / "node.yaml"
    node.write_text('node: n1\neid: ipn:7.0\nkeys: n1.keys\nclas: [{type: tcpcl, listen: "127.0.0.1:0"}]\n')
    (tmp_path / "n1.keys").write_text("# n1\nipn:7.0 integrity 1234\n")
    p = subprocess.run(
        [sys.executable, "-m", "hilnet", "agent", "--config", str(node), "--socket", str(tmp_path / "s.sock")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert p.returncode == 2
    assert f"{tmp_path / 'n1.keys'}:2:19: an integrity key has 16 to 128 bytes, this one 2" in p.stderr
    assert "other users can read these keys" in p.stderr  # written 0644 here
    assert "Traceback" not in p.stderr


def test_the_plan_counts_the_bytes_bpsec_adds(tmp_path):
    from hilnet.bundle.bpsec.policy import overhead_bytes
    from hilnet.bundle.eid import parse_eid

    async def main():
        n = Node(VirtualClock(T0), REAL0)
        cfg = AgentConfig(
            node="a", eid="ipn:1.0", store_path=str(tmp_path / "a.sqlite"), keys_path=keyfile(tmp_path, "a", RING)
        )
        await n.configure(cfg)
        try:
            for p in (None, Protection.named("hmac-sha256", None), Protection.named(None, "aes128-gcm"), BOTH):
                await n.agent.submit("ipn:3.1", b"x" * 1024, 3600 * S, protection=p)
            plain, *secured = [e.size for e in n.of(ev.Stored)]
            made = [s - plain for s in secured]
            ps = (Protection.named("hmac-sha256", None), Protection.named(None, "aes128-gcm"), BOTH)
            assert made == [overhead_bytes(p, parse_eid("ipn:1.0")) for p in ps]
            assert made[2] > made[0] + made[1]  # the BCB over the BIB adds a second tag
        finally:
            await n.agent.stop()

    run(main())
