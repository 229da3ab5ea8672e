"""LTP against ION 4.1.3's LTP over UDP: a bundle each way between hilnet's LtpCla and an ION node.

ION runs on its own localhost ports, from a generated rc file: engine 2 (node
ipn:2), a span to engine 1 (us) with an aggregation threshold of one byte, so
each bundle is one block, as hilnet sends them. ION sends with ``bpsendfile``
and receives with ``bprecvfile``.

ION is not stopped with ``ionstop``: its ``killm`` kills every ION process on
the host by name, other nodes' too. The node runs in its own PID, IPC and mount
namespaces instead, with a private ``/dev/shm`` (ION's semaphores are files
there): when the script, the namespace's first process, ends, the kernel ends
every ION process of it, and its shared memory and semaphores go with it.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ion_support import ion_or_skip
from test_ltp_cla import udp_ports

from hilnet.agent.cla.ltp import LtpCla
from hilnet.agent.cla.ltp_session import LtpSettings, Peer
from hilnet.agent.intake import CreationCounter, new_bundle
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.cos import DEFAULT_COS
from hilnet.bundle.eid import parse_eid
from hilnet.clock import realtime_ns

pytestmark = pytest.mark.slow

RC = """## begin ionadmin
1 2 ''
s
a contact +0 +86400 2 2 100000000
a contact +0 +86400 2 1 100000000
a contact +0 +86400 1 2 100000000
a range +0 +86400 2 2 1
a range +0 +86400 1 2 1
a range +0 +86400 2 1 1
m production 100000000
m consumption 100000000
## end ionadmin
## begin ltpadmin
1 32
a span 1 32 32 1400 1 1 'udplso 127.0.0.1:{ours}'
m screening n
s 'udplsi 127.0.0.1:{ion}'
## end ltpadmin
## begin bpadmin
1
a scheme ipn 'ipnfw' 'ipnadminep'
a endpoint ipn:2.1 q
a endpoint ipn:2.2 q
a protocol ltp
a induct ltp 2 ltpcli
a outduct ltp 1 ltpclo
s
## end bpadmin
## begin ipnadmin
a plan 1 ltp/1
## end ipnadmin
"""

SCRIPT = """set -e
mount -t tmpfs -o size=64m hilnet-ion /dev/shm
cd "$1"
ionstart -I node.rc > ionstart.out 2>&1
bpsendfile ipn:2.2 ipn:1.1 to_hilnet.bin
timeout 30 bprecvfile ipn:2.1 1 > bprecvfile.out 2>&1 || true
"""
# PID 1 of its own PID namespace: when the script ends, every ION process of the node ends with it.
NAMESPACES = ("unshare", "--ipc", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private")


class Sink:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def bundle_received(self, data: bytes, cla: str, peer: str | None) -> None:
        self.got.append(data)

    def session_changed(self, *args: Any) -> None:
        pass

    def tls_failed(self, *args: Any) -> None:
        pass


def _lossy_link(ion_in: int, ours: int) -> tuple[subprocess.Popen[str], int, int]:
    """`hilnet link` between ION and us: 50 ms each way, 5 % loss; returns it and the ports each side sends to."""
    relay_ion, relay_ours = udp_ports(2)  # ION sends to relay_ion, we send to relay_ours
    link = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hilnet",
            "link",
            f"udp://127.0.0.1:{relay_ion}?peer=127.0.0.1:{ion_in}",
            f"udp://127.0.0.1:{relay_ours}?peer=127.0.0.1:{ours}",
            *("--delay", "50ms", "--loss", "5%", "--seed", "7"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[3])},
    )
    return link, relay_ion, relay_ours


@pytest.mark.parametrize("lossy", [False, True], ids=["direct", "through-hilnet-link-5pct-loss"])
def test_a_bundle_each_way_between_hilnet_and_ion(tmp_path: Path, lossy: bool) -> None:
    ion = ion_or_skip()
    ours, theirs = udp_ports(2)
    link, ion_to, ours_to = _lossy_link(theirs, ours) if lossy else (None, ours, theirs)
    (tmp_path / "node.rc").write_text(RC.format(ours=ion_to, ion=theirs))
    (tmp_path / "run.sh").write_text(SCRIPT)
    to_hilnet = random.Random(1).randbytes(200_000 if lossy else 20_000)
    (tmp_path / "to_hilnet.bin").write_bytes(to_hilnet)
    to_ion = random.Random(2).randbytes(200_000 if lossy else 30_000)
    bundle = new_bundle(
        parse_eid("ipn:1.1"),
        parse_eid("ipn:2.1"),
        to_ion,
        CreationCounter().next(realtime_ns()),
        3_600 * 10**9,
        32,
        DEFAULT_COS,
    )

    async def main() -> Sink:
        cla = LtpCla(
            "ipn:1.0",
            LtpSettings(1, rtt_ns=200_000_000),
            ("127.0.0.1", ours),
            {"ipn:2.0": Peer(2, "ipn:2.0", ("127.0.0.1", ours_to))},
        )
        sink = Sink()
        await cla.start(sink)
        ion_run = await asyncio.create_subprocess_exec(
            *NAMESPACES, "bash", str(tmp_path / "run.sh"), str(tmp_path), env=ion.env()
        )
        try:
            for _ in range(300):  # ION's first bundle reaches us once it is up
                if sink.got:
                    break
                await asyncio.sleep(0.1)
            await asyncio.wait_for(cla.send("ipn:2.0", encode_bundle(bundle)), 30)
            assert await asyncio.wait_for(ion_run.wait(), 60) == 0
        finally:
            if ion_run.returncode is None:
                ion_run.kill()
                await ion_run.wait()
            await cla.stop()
        assert cla.stats["export_open"] == 0 and cla.stats["import_open"] == 0
        if lossy:  # both engines repaired what the link lost
            assert cla.stats["red_bytes_resent"] > 0
        return sink

    try:
        sink = asyncio.run(main())
    finally:
        if link is not None:
            link.terminate()
            link.wait(10)
    assert len(sink.got) == 1, (tmp_path / "ion.log").read_text()[-3000:]
    got = decode_bundle(sink.got[0])
    assert (str(got.primary.source), str(got.primary.destination)) == ("ipn:2.2", "ipn:1.1")
    assert got.payload == to_hilnet
    received = tmp_path / "testfile1"
    assert received.exists(), (tmp_path / "ion.log").read_text()[-3000:]
    assert received.read_bytes() == to_ion
