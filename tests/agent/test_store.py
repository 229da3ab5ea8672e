import asyncio
import hashlib
import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import PutRequest
from hilnet.clock import VirtualClock
from hilnet.errors import DuplicateBundleError, StoreError, StoreFullError

WRITER = Path(__file__).with_name("store_writer.py")
_spec = importlib.util.spec_from_file_location("hilnet_store_writer", WRITER)
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)

COLS = {"source": "ipn:1.0", "destination": "ipn:4.0", "priority": 1, "expires_at_ns": 1000}


def put(store, key, data=b"x", **over):
    return store.put(key, data, **{**COLS, **over})


@pytest.fixture
def clock():
    return VirtualClock(5_000)


@pytest.fixture
def store(tmp_path, clock):
    with BundleStore(tmp_path / "store.db", clock=clock) as s:
        yield s


def test_put_get_info_roundtrip(store):
    data = os.urandom(3000)
    sb = put(store, "ipn:1.0-1-0", data, next_hop="ipn:2.0", meta={"hops": ["a"]})
    assert sb.size == 3000 and sb.sha256 == hashlib.sha256(data).digest()
    assert sb.stored_at_ns == 5_000 and sb.next_hop == "ipn:2.0"
    assert store.get("ipn:1.0-1-0") == data
    assert store.info("ipn:1.0-1-0") == sb
    assert dict(store.info("ipn:1.0-1-0").meta) == {"hops": ["a"]}
    assert "ipn:1.0-1-0" in store and store.contains("ipn:1.0-1-0")
    assert store.get("nope") is None and store.info("nope") is None and "nope" not in store
    assert store.count() == 1 and store.bytes_used() == 3000


def test_duplicate_put_is_refused_and_keeps_the_original(store):
    put(store, "k", b"first")
    with pytest.raises(DuplicateBundleError):
        put(store, "k", b"second")
    assert store.get("k") == b"first" and store.count() == 1 and store.bytes_used() == 5


def test_put_many_is_all_or_nothing(store):
    reqs = [PutRequest(f"k{i}", bytes([i]) * i, **COLS) for i in range(10)]
    assert [b.key for b in store.put_many(reqs)] == [f"k{i}" for i in range(10)]
    with pytest.raises(DuplicateBundleError):
        store.put_many([PutRequest("new", b"n", **COLS), PutRequest("k3", b"dup", **COLS)])
    assert "new" not in store and store.count() == 10 and store.bytes_used() == 45


def test_quota_in_bundles_and_bytes_refuses_clearly(tmp_path):
    with BundleStore(tmp_path / "s.db", quota_bundles=2, quota_bytes=100) as s:
        put(s, "a", b"1" * 60)
        with pytest.raises(StoreFullError, match="60 of 100 bytes"):
            put(s, "b", b"2" * 41)
        put(s, "b", b"2" * 40)
        with pytest.raises(StoreFullError, match="2 of 2 bundles"):
            put(s, "c", b"")
        assert s.put_many([]) == []
        s.delete("a", "delivered")
        with pytest.raises(StoreFullError):  # the second would not fit: neither is stored
            s.put_many([PutRequest("c", b"3" * 50, **COLS), PutRequest("d", b"4" * 11, **COLS)])
        assert s.count() == 1 and s.bytes_used() == 40 and "c" not in s
        put(s, "c", b"3" * 60)  # exactly full
    with BundleStore(tmp_path / "s.db", quota_bundles=2, quota_bytes=100) as s:
        assert s.count() == 2 and s.bytes_used() == 100  # totals survive reopening
        with pytest.raises(StoreFullError):
            put(s, "d", b"")


def test_list_filters_and_orders(store, clock):
    put(store, "low-late", priority=0, expires_at_ns=300, destination="ipn:4.0")
    put(store, "high-early", priority=2, expires_at_ns=100, destination="ipn:5.0", next_hop="ipn:2.0")
    put(store, "high-late", priority=2, expires_at_ns=400, destination="ipn:4.0", next_hop="ipn:2.0")
    put(store, "mid", priority=1, expires_at_ns=200, destination="ipn:4.0", next_hop="ipn:3.0")
    keys = lambda bs: [b.key for b in bs]  # noqa: E731
    assert keys(store.list()) == ["high-early", "high-late", "mid", "low-late"]
    assert keys(store.list(order="expiry")) == ["high-early", "mid", "low-late", "high-late"]
    assert keys(store.list(order="arrival")) == ["low-late", "high-early", "high-late", "mid"]
    assert keys(store.list(destination="ipn:4.0")) == ["high-late", "mid", "low-late"]
    assert keys(store.list(next_hop="ipn:2.0", order="expiry")) == ["high-early", "high-late"]
    assert keys(store.list(destination="ipn:4.0", next_hop="ipn:2.0")) == ["high-late"]
    assert keys(store.list(limit=2, order="expiry")) == ["high-early", "mid"]
    assert store.next_expiry_ns() == 100
    with pytest.raises(ValueError):
        store.list(order="size")


def test_next_hop_and_forwarded_marks(store, clock):
    put(store, "a")
    put(store, "b")
    assert store.set_next_hop("a", "ipn:2.0") and not store.set_next_hop("zz", "ipn:2.0")
    clock.advance(77)
    assert store.mark_forwarded("a", "ipn:2.0") and not store.mark_forwarded("zz", "ipn:2.0")
    a = store.info("a")
    assert (a.next_hop, a.forwarded_to, a.forwarded_at_ns) == ("ipn:2.0", "ipn:2.0", 5_077)
    assert [b.key for b in store.list(forwarded=False)] == ["b"]
    assert [b.key for b in store.list(forwarded=True)] == ["a"]
    assert store.set_next_hop("a", None) and store.info("a").next_hop is None


def test_delete_and_expire_are_journaled(store, clock):
    for i, exp in enumerate([100, 200, 300]):
        put(store, f"k{i}", bytes(10 * (i + 1)), expires_at_ns=exp)
    assert store.delete("k1", "delivered") is True
    assert store.delete("k1", "delivered") is False
    with pytest.raises(ValueError):
        store.delete("k0", "")
    clock.advance(1)
    gone = store.expire(150)
    assert [b.key for b in gone] == ["k0"] and store.expire(150) == []
    assert store.count() == 1 and store.bytes_used() == 30 and store.get("k0") is None
    journal = store.deletions()
    assert [(d.key, d.reason, d.at_ns, d.size) for _, d in journal] == [
        ("k1", "delivered", 5_000, 20),
        ("k0", "expired", 5_001, 10),
    ]
    assert store.deletions(since=journal[0][0])[0][1].key == "k0"
    assert store.prune_deletions(journal[0][0]) == 1
    assert [d.key for _, d in store.deletions()] == ["k0"]
    assert store.expire(300) and store.count() == 0 and store.next_expiry_ns() is None


def test_large_payload_roundtrip(store):
    data = hashlib.shake_256(b"big").digest(24 * 1024 * 1024)
    put(store, "big", data)
    assert store.get("big") == data
    store.check(deep=True)


def test_bit_rot_in_a_payload_is_reported_not_returned(tmp_path):
    path = tmp_path / "s.db"
    with BundleStore(path) as s:
        put(s, "k", b"A" * 5000)
    db = sqlite3.connect(path)
    db.execute("UPDATE payload SET data = ? ", (b"A" * 4999 + b"B",))
    db.commit()
    db.close()
    with BundleStore(path) as s:
        s.check()  # the file itself is sound: only the hash can tell
        with pytest.raises(StoreError, match="corrupt"):
            s.get("k")
        with pytest.raises(StoreError, match="corrupt"):
            s.check(deep=True)


def test_foreign_and_garbage_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all " * 300)
    with pytest.raises(StoreError, match="garbage.db"):
        BundleStore(garbage)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not a hilnet bundle store"):
        BundleStore(other)
    truncated = tmp_path / "trunc.db"
    with BundleStore(truncated) as s:
        for i in range(50):
            put(s, f"k{i}", os.urandom(2000))
    with open(truncated, "r+b") as f:  # clobber pages in the middle of the file
        f.seek(4096)
        f.write(b"\xff" * 8192)
    with pytest.raises(StoreError):
        with BundleStore(truncated) as s:
            s.check()
            s.list()


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")  # e.g. killed right after creating the file
    with BundleStore(path) as s:
        put(s, "k")
    with BundleStore(path) as s:
        assert s.get("k") == b"x"


def test_a_second_owner_is_refused(tmp_path):
    with BundleStore(tmp_path / "s.db"):
        with pytest.raises(StoreError, match="another process"):
            BundleStore(tmp_path / "s.db")


def test_closed_store_raises(tmp_path):
    s = BundleStore(tmp_path / "s.db")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get("k")


def test_disk_full_refuses_the_put_and_keeps_the_store_usable(store):
    put(store, "small", b"s" * 100)
    db = store._writer._db  # the write connection: max_page_count is per connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages + 2}")  # SQLITE_FULL, as a full disk gives
    with pytest.raises(StoreFullError, match="disk full"):
        put(store, "big", b"b" * 100_000)

    async def through_the_loop():
        return await store.put_async("big", b"b" * 100_000, **COLS)

    with pytest.raises(StoreFullError, match="disk full"):  # and from the event loop, through the writer's thread
        asyncio.run(through_the_loop())
    assert store.count() == 1 and store.bytes_used() == 100 and "big" not in store
    db.execute("PRAGMA max_page_count=1073741823")
    put(store, "big", b"b" * 100_000)
    assert store.get("big") == b"b" * 100_000 and store.count() == 2


def test_totals_stay_exact_under_concurrent_puts_and_deletes(tmp_path):
    path = tmp_path / "s.db"
    with BundleStore(path) as s:

        def worker(w):
            for i in range(60):
                put(s, f"w{w}-{i}", bytes(i))
                if i % 3 == 0:
                    s.delete(f"w{w}-{i}", "test")

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        totals = (s.count(), s.bytes_used())
    with BundleStore(path) as s:
        stored = s.list()
        assert totals == (s.count(), s.bytes_used()) == (len(stored), sum(b.size for b in stored))
        assert totals[0] == 4 * 40 and len(s.deletions()) == 4 * 20


def test_group_commit_batches_threads_and_answers_each(tmp_path):
    with BundleStore(tmp_path / "s.db", quota_bundles=150) as s:
        results, errors = {}, {}

        def worker(w):
            for i in range(40):
                key = f"w{w}-{i}"
                try:
                    results[key] = put(s, key, key.encode())
                except StoreFullError as exc:
                    errors[key] = exc

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 150 and len(errors) == 50  # refusals are per put, not per batch
        assert s.commits < 150  # several puts shared a commit
        assert all(s.get(k) == k.encode() for k in results)
        assert not any(k in s for k in errors)
        with pytest.raises(DuplicateBundleError):
            put(s, next(iter(results)), b"again")
    with pytest.raises(StoreError, match="closed"):
        put(s, "late", b"")


def test_group_commit_serves_asyncio_tasks(tmp_path):
    async def main(s):
        return await asyncio.gather(*(s.put_async(f"t{i}", b"p%d" % i, **COLS) for i in range(200)))

    with BundleStore(tmp_path / "s.db") as s:
        stored = asyncio.run(main(s))
        assert [b.key for b in stored] == [f"t{i}" for i in range(200)]
        assert s.commits < 200 and s.count() == 200
        assert s.get("t199") == b"p199"


def _check_store(path, promised, deleted, first, last, mode):
    """Every promised key is stored intact or journaled as deleted; nothing else is."""
    with BundleStore(path) as s:
        s.check()
        present = {b.key: b for b in s.list(order="arrival")}
        journaled = {d.key for _, d in s.deletions()}
        assert s.count() == len(present)
        assert s.bytes_used() == sum(b.size for b in present.values())
        lost = promised - present.keys() - journaled
        assert not lost, f"{mode}: keys printed as stored are gone: {sorted(lost)[:5]}"
        assert not deleted & present.keys(), f"{mode}: deleted keys came back"
        for key in present:
            n = int(key[1:])
            if first <= n < last:  # this run's bundles, printed or not, must be exact
                assert s.get(key) == writer.payload_for(key), f"{mode}: {key} corrupt"
        return present.keys() | journaled


def test_kill_minus_9_at_random_moments_loses_nothing(tmp_path):
    """A writer is SIGKILLed at a random instant ~50 times; each reopen finds every put it
    announced, with the exact bytes, and every deletion it announced journaled."""
    path = tmp_path / "killed.db"
    rng = random.Random(int.from_bytes(os.urandom(4)))
    modes = ["single", "many", "group", "async"]
    promised, deleted, known = set(), set(), set()
    runs, total_lines, deadline = 0, 0, time.monotonic() + 17
    while runs < 50 and time.monotonic() < deadline:
        mode, first = modes[runs % len(modes)], runs * 1_000_000
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(first), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # 0.02 s is before the store is even open; 0.3 s is hundreds of puts in.
        time.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err.decode()
        lines = out.decode().splitlines()
        total_lines += len(lines)
        for line in lines:
            kind, key = line.split()
            (promised if kind == "P" else deleted).add(key)
        if path.exists():
            known = _check_store(path, promised, deleted, first, first + 1_000_000, mode)
        else:
            assert not promised
        assert promised <= known
        runs += 1
    print(f"{runs} kills, {len(promised)} puts announced, {len(deleted)} deletes")
    assert runs >= 30 and len(promised) > 500, (runs, len(promised))
    with BundleStore(path) as s:  # finally, re-hash everything that survived
        s.check(deep=True)
        for b in s.list():
            assert s.get(b.key) == writer.payload_for(b.key)
