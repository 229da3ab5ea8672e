"""Classes of service across stacks: ION's block 193 read and honoured both ways, over TCPCLv3.

ION forwards a hilnet expedited bundle ahead of bulk: hilnet agent h1 sends bulk
bundles, then one expedited, to h3 through ION relay 2 while ION's contact
towards 3 has not begun, so ION queues them; when the contact begins, the
expedited one arrives first. And hilnet honours ION's classes: ION node 1's
bpsendfile sends bulk files, then an expedited one, through hilnet relay h2
whose contact plan opens the way to h3 later; the expedited one arrives first.
Without the classes both would come in the order sent: bulk first.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from agent_procs import Procs, free_port
from ion_nodes import IonNode, wait_until
from ion_support import ion  # noqa: F401  (the fixture)

from hilnet.agent.payload import payload_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

HOLD_S = 25  # the relay's contact towards the destination begins this long after it starts
BULK, EXPEDITED = 0, 2  # classes (priority) as ION and the inject command number them
SECOND = 1_000_000_000


@pytest.fixture
def world(tmp_path):
    procs, nodes = Procs(tmp_path), []
    yield procs, nodes
    procs.stop_all()
    for n in nodes:
        n.stop()
    assert not [pid for n in nodes for pid in n.pids()], "ION processes outlived the test"


def _v3(listen: int, peers: dict[str, int]) -> dict:
    return {
        "type": "tcpclv3",
        "listen": f"127.0.0.1:{listen}",
        "peers": {e: f"127.0.0.1:{p}" for e, p in peers.items()},
    }


def test_ion_forwards_a_hilnet_expedited_bundle_ahead_of_bulk(ion, world, tmp_path):  # noqa: F811
    procs, nodes = world
    h1, p2, h3 = free_port(), free_port(), free_port()
    for name, eid, listen in (("h1", "ipn:1.0", h1), ("h3", "ipn:3.0", h3)):
        procs.start(name)
        procs.configure(name, eid, [_v3(listen, {"ipn:2.0": p2})], routes={"*": "ipn:2.0"})
    contacts = [(1, 2), (2, 1), (3, 2), (2, 3, HOLD_S)]
    n2 = IonNode(ion, tmp_path / "ion2", 2, p2, {1: f"127.0.0.1:{h1}", 3: f"127.0.0.1:{h3}"}, contacts)
    nodes.append(n2)
    loaded = n2.start()
    wait_until(lambda: procs.of("h1", "session-up"), 30, "h1's session with ION")
    sent = [(BULK, 40_000)] * 4 + [(EXPEDITED, 2_000)]
    for seed, (klass, size) in enumerate(sent):
        procs.call("h1", {"cmd": "inject", "dest": "ipn:3.0", "size": size, "seed": seed, "priority": klass})
    wait_until(lambda: len(procs.of("h1", "acked")) == len(sent), 30, "ION to take all five")
    assert time.monotonic() < loaded + HOLD_S, "ION took them after its contact began: the test proves nothing"
    wait_until(lambda: len(procs.of("h3", "delivered")) == len(sent), 90, "delivery at h3")
    order = [e["sha256"] for e in procs.of("h3", "delivered")]
    digest = [hashlib.sha256(payload_for(seed, size)).hexdigest() for seed, (_, size) in enumerate(sent)]
    assert sorted(order) == sorted(digest)
    assert order[0] == digest[-1], "the expedited bundle did not arrive first"
    assert procs.of("h3", "delivered")[0]["t_ns"] >= procs.of("h1", "acked")[-1]["t_ns"]


def test_hilnet_honours_ion_classes_of_service(ion, world, tmp_path):  # noqa: F811
    procs, nodes = world
    p1, h2, h3 = free_port(), free_port(), free_port()
    procs.start("h3")
    procs.configure("h3", "ipn:3.0", [_v3(h3, {})])
    procs.start("h2")
    epoch = procs.call("h2", {"cmd": "time"})["monotonic_ns"]
    hour = 3600 * SECOND
    plan = [("ion1", "h2", 0), ("h2", "ion1", 0), ("h3", "h2", 0), ("h2", "h3", HOLD_S * SECOND)]
    procs.configure(
        "h2",
        "ipn:2.0",
        [_v3(h2, {"ipn:1.0": p1, "ipn:3.0": h3})],
        nodes={"ion1": "ipn:1.0", "h2": "ipn:2.0", "h3": "ipn:3.0"},
        contacts=[
            {"frm": f, "to": t, "start_ns": s, "end_ns": hour, "rate": 1_000_000, "owlt_ns": 1_000_000}
            for f, t, s in plan
        ],
        epoch_ns=epoch,
    )
    opens = time.monotonic() + (epoch + HOLD_S * SECOND - procs.call("h2", {"cmd": "time"})["monotonic_ns"]) / 1e9
    n1 = IonNode(ion, tmp_path / "ion1", 1, p1, {2: f"127.0.0.1:{h2}"}, [(1, 2), (2, 1), (2, 3), (3, 2)])
    nodes.append(n1)
    n1.start()
    wait_until(lambda: procs.of("h2", "session-up"), 30, "h2's session with ION")
    files = []
    for i, (cos, size) in enumerate([("0.0", 40_000)] * 4 + [("0.2", 2_000)]):
        f = tmp_path / f"file{i}"
        f.write_bytes(os.urandom(size))
        files.append(f)
        n1.send_file(f, "ipn:3.0", cos)
    wait_until(lambda: len(procs.of("h2", "stored")) == len(files), 30, "h2 to take all five")
    assert time.monotonic() < opens, "h2 took them after its contact began: the test proves nothing"
    wait_until(lambda: len(procs.of("h3", "delivered")) == len(files), 90, "delivery at h3")
    order = [e["sha256"] for e in procs.of("h3", "delivered")]
    digest = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert sorted(order) == sorted(digest)
    assert order[0] == digest[-1], "the expedited bundle did not arrive first"
    arrived = [e["bundle"] for e in procs.of("h2", "received")]
    assert len(arrived) == len(files)  # came from ION over TCPCLv3, held at h2 until the contact
