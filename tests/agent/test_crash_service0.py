"""Bundles for a node's own service 0 that a crash left in its store are delivered after a restart.

``hilnet run`` injects to ``ipn:N.0``, which needs no subscriber. A bundle is
committed first and its delivery (a batched deletion) follows; ``kill -9`` in
between leaves it stored, and the restarted agent used to hold it for a
subscriber that never comes. Real agent processes, real SQLite stores.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest
from agent_procs import MS, Procs, command

from hilnet.agent.intake import CreationCounter, bundle_key, new_bundle
from hilnet.agent.store import BundleStore
from hilnet.bundle.blocks import unix_ns_from_dtn_ms
from hilnet.bundle.codec import encode_bundle
from hilnet.bundle.cos import DEFAULT_COS
from hilnet.bundle.eid import parse_eid
from hilnet.clock import realtime_ns

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def stored_keys(path) -> set[str]:
    """The bundle keys in an agent's SQLite store, read with sqlite3 itself (the agent is not running)."""
    with sqlite3.connect(path) as db:
        return {k for (k,) in db.execute("SELECT key FROM bundle")}


def test_bundles_committed_but_not_yet_delivered_are_delivered_on_restart(procs, tmp_path):
    """The state a crash leaves: bundles for ipn:2.0 committed, no deletion journalled."""
    path = tmp_path / "b.sqlite"
    counter = CreationCounter()
    keys = set()
    with BundleStore(str(path)) as store:
        for i in range(5):
            b = new_bundle(
                parse_eid("ipn:1.0"),
                parse_eid("ipn:2.0"),
                bytes([i]) * 100,
                counter.next(realtime_ns()),
                600_000 * MS,
                32,
                DEFAULT_COS,
            )
            key = bundle_key(b.id)
            store.put(
                key,
                encode_bundle(b),
                source="ipn:1.0",
                destination="ipn:2.0",
                priority=DEFAULT_COS.rank,
                expires_at_ns=unix_ns_from_dtn_ms(b.primary.expires_ms),
            )
            keys.add(key)
    procs.start("b")
    procs.configure("b", "ipn:2.0", [])
    procs.wait(lambda: {e["bundle"] for e in procs.of("b", "delivered")} == keys, 20, "the 5 stored bundles delivered")
    procs.wait(lambda: procs.status("b")["stored"] == 0, 10, "the store empty")


def test_kill_9_while_injecting_to_service_0_then_restart_delivers_each_once(procs, tmp_path):
    """A burst of injections to the node's own service 0, ``kill -9`` in the middle, restart on the same store."""
    path = tmp_path / "b.sqlite"
    for attempt in range(5):
        procs.start("b")
        procs.configure("b", "ipn:2.0", [])
        agent = procs.agents["b"]
        for i in range(400):
            agent.send(_inject(i + attempt * 1000))
        want = 50 * (attempt + 1)
        procs.wait(lambda: len(procs.of("b", "stored")) >= want, 20, "bundles stored")  # noqa: B023
        agent.kill()
        left = stored_keys(path)
        if left:
            break
    assert left, "no kill landed between a commit and its delivery: the test proved nothing"
    procs.start("b")
    procs.configure("b", "ipn:2.0", [])
    # The delivered events follow the deletion's commit: wait for them, not for the store count.
    procs.wait(lambda: left <= {e["bundle"] for e in procs.of("b", "delivered")}, 30, f"the {len(left)} left delivered")
    procs.wait(lambda: procs.status("b")["stored"] == 0, 10, "the store empty")
    delivered = Counter(e["bundle"] for e in procs.of("b", "delivered"))
    assert max(delivered.values()) == 1, "a bundle was delivered twice"


def _inject(seed: int):
    return command({"cmd": "inject", "dest": "ipn:2.0", "size": 64, "seed": seed, "lifetime_ns": 600_000 * MS})
