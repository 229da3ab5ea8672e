"""The store's one writer seen from several callers at once: reads beside an open
transaction, the asyncio front end, cancellation, and a failing batch."""

import asyncio
import threading

import pytest

from hilnet.agent.store import BundleStore
from hilnet.agent.store_ops import Put, Transaction, WriteOp
from hilnet.agent.store_schema import PutRequest, prepare_put
from hilnet.errors import StoreError, StoreFullError

COLS = {"source": "ipn:1.0", "destination": "ipn:4.0", "priority": 1, "expires_at_ns": 1000}


def put(store, key, data=b"x", **over):
    return store.put(key, data, **{**COLS, **over})


class Hold(WriteOp[None]):
    """A write that keeps the writer's transaction open until the test releases it."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def apply(self, tx: Transaction) -> None:
        self.entered.set()
        self.release.wait(10)


def hold_writer(store: BundleStore) -> Hold:
    """Block the writer inside a transaction; what is queued meanwhile forms the next batch."""
    hold = Hold()
    store._writer.submit(hold)  # the test reaches the writer itself: no public write blocks on purpose
    assert hold.entered.wait(5)
    return hold


def test_reads_neither_wait_for_an_open_transaction_nor_see_it(tmp_path):
    with BundleStore(tmp_path / "s.db") as s:
        put(s, "a", b"1")
        first = hold_writer(s)
        pending = s._writer.submit(Put(prepare_put(PutRequest("b", b"x", **COLS))))
        second = Hold()
        s._writer.submit(second)
        first.release.set()
        assert second.entered.wait(5)  # "b" is inserted, its transaction still open
        assert s.get("a") == b"1" and s.get("b") is None and [b.key for b in s.list()] == ["a"]
        assert s.count() == 1 and not pending.done()
        second.release.set()
        assert pending.result(5).key == "b" and s.get("b") == b"x" and s.count() == 2


def test_async_writes_expire_route_and_delete(tmp_path):
    async def main(s):
        for i, exp in enumerate([100, 200, 300]):
            await s.put_async(f"k{i}", bytes(10), **{**COLS, "expires_at_ns": exp})
        assert await s.set_next_hop_async("k2", "ipn:2.0") and not await s.set_next_hop_async("zz", "ipn:2.0")
        assert [b.key for b in await s.expire_async(150)] == ["k0"]
        assert await s.delete_async("k1", "delivered") and not await s.delete_async("k1", "delivered")
        gone = await asyncio.gather(*(s.delete_async(k, "acked") for k in ("k2", "k2", "nope")))
        return gone

    with BundleStore(tmp_path / "s.db") as s:
        assert asyncio.run(main(s)) == [True, True, False]  # one batch: both asks see the key go
        assert s.count() == 0 and s.bytes_used() == 0
        assert [(d.key, d.reason) for _, d in s.deletions()] == [
            ("k0", "expired"),
            ("k1", "delivered"),
            ("k2", "acked"),
        ]
        with pytest.raises(ValueError):
            s.delete_async("k0", "")


def test_a_cancelled_put_is_not_made_a_cancelled_delete_is(tmp_path):
    async def main(s):
        hold = await asyncio.to_thread(hold_writer, s)
        wanted = s.put_async("p", b"p", **COLS)
        dropped = s.delete_async("a", "test")
        wanted.cancel()
        dropped.cancel()
        await asyncio.sleep(0)  # a cancel reaches the writer's queue from the loop's next turn
        hold.release.set()
        await s.put_async("q", b"q", **COLS)  # committed after the batch holding the cancelled two

    with BundleStore(tmp_path / "s.db") as s:
        put(s, "a")
        asyncio.run(main(s))
        assert "p" not in s and "a" not in s and "q" in s
        assert [(d.key, d.reason) for _, d in s.deletions()] == [("a", "test")]


def test_a_failing_batch_fails_only_the_write_that_broke_it(tmp_path):
    async def main(s):
        hold = await asyncio.to_thread(hold_writer, s)
        deleted = s.delete_async("small", "delivered")
        big = s.put_async("big", b"b" * 100_000, **COLS)
        fits = s.put_async("fits", b"f", **COLS)
        hold.release.set()
        return await asyncio.gather(deleted, big, fits, return_exceptions=True)

    with BundleStore(tmp_path / "s.db") as s:
        put(s, "small", b"s" * 100)
        db = s._writer._db  # the write connection: max_page_count is per connection
        db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0] + 2}")
        deleted, big, fits = asyncio.run(main(s))
        assert deleted is True and isinstance(big, StoreFullError) and "disk full" in str(big)
        assert fits.key == "fits" and s.count() == 1 and "small" not in s and "big" not in s


def test_threads_and_an_event_loop_write_together_and_the_totals_stay_exact(tmp_path):
    path = tmp_path / "s.db"

    def worker(s, w):
        for i in range(50):
            put(s, f"t{w}-{i}", bytes(i))
            if i % 5 == 0:
                s.delete(f"t{w}-{i}", "test")

    async def tasks(s):
        async def one(i):
            await s.put_async(f"a{i}", bytes(i), **COLS)
            if i % 5 == 0:
                await s.delete_async(f"a{i}", "test")

        await asyncio.gather(*(one(i) for i in range(200)))

    with BundleStore(path) as s:
        threads = [threading.Thread(target=worker, args=(s, w)) for w in range(3)]
        for t in threads:
            t.start()
        asyncio.run(tasks(s))
        for t in threads:
            t.join()
        assert s.commits < 3 * 60 + 240  # writes from both sides shared commits
        totals = (s.count(), s.bytes_used())
    with BundleStore(path) as s:
        stored = s.list()
        assert totals == (s.count(), s.bytes_used()) == (len(stored), sum(b.size for b in stored))
        assert totals[0] == 3 * 40 + 160 and len(s.deletions()) == 3 * 10 + 40


def test_writes_after_close_are_refused(tmp_path):
    s = BundleStore(tmp_path / "s.db")
    s.close()

    async def late():
        return s.put_async("late", b"", **COLS)

    with pytest.raises(StoreError, match="closed"):
        asyncio.run(late())
    with pytest.raises(StoreError, match="closed"):
        s.expire(0)
