"""A store writer for the kill -9 test: puts bundles forever, printing each key once durable.

    python store_writer.py STORE FIRST MODE

Keys are ``b<n>`` from ``n = FIRST`` upwards; each payload is derived from its key
(:func:`payload_for`), so the test can check the exact bytes without being told them.
After a put returns it prints ``P <key>``; every 7th bundle is then deleted with
reason ``test`` and ``D <key>`` printed once that returned. MODE is ``single``
(one put per transaction), ``many`` (put_many batches), ``group`` (four threads
whose blocking puts share commits) or ``async`` (asyncio tasks awaiting
``put_async`` / ``delete_async``, as the agent does). Output is flushed line by
line: a printed line is a promise the store must keep after SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading

from hilnet.agent.store import BundleStore
from hilnet.agent.store_schema import PutRequest


def payload_for(key: str) -> bytes:
    """0..8 KiB derived from the key; every 37th is 200 KiB (a long overflow chain)."""
    n = int(key[1:])
    size = 200 * 1024 if n % 37 == 0 else hashlib.sha256(key.encode()).digest()[0] * 32
    return hashlib.shake_256(key.encode()).digest(size)


def columns_for(key: str) -> dict:
    n = int(key[1:])
    return {"source": "ipn:1.0", "destination": f"ipn:{2 + n % 3}.0", "priority": n % 3, "expires_at_ns": 10**18 + n}


_out = threading.Lock()


def say(kind: str, key: str) -> None:
    with _out:
        sys.stdout.write(f"{kind} {key}\n")
        sys.stdout.flush()


def after_put(store: BundleStore, key: str) -> None:
    say("P", key)
    if int(key[1:]) % 7 == 0:
        store.delete(key, "test")
        say("D", key)


def main() -> None:
    path, first, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    store = BundleStore(path)
    if mode == "single":
        n = first
        while True:
            key = f"b{n}"
            store.put(key, payload_for(key), **columns_for(key))
            after_put(store, key)
            n += 1
    elif mode == "many":
        n, size = first, 1
        while True:
            keys = [f"b{i}" for i in range(n, n + size)]
            store.put_many([PutRequest(k, payload_for(k), **columns_for(k)) for k in keys])
            for k in keys:
                after_put(store, k)
            n, size = n + size, size % 20 + 1
    elif mode == "group":

        def worker(w: int) -> None:
            n = first + w
            while True:
                key = f"b{n}"
                store.put(key, payload_for(key), **columns_for(key))
                after_put(store, key)
                n += 4

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif mode == "async":
        asyncio.run(async_writers(store, first, tasks=16))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


async def async_writers(store: BundleStore, first: int, tasks: int) -> None:
    async def task(w: int) -> None:
        n = first + w
        while True:
            key = f"b{n}"
            await store.put_async(key, payload_for(key), **columns_for(key))
            say("P", key)
            if n % 7 == 0:
                await store.delete_async(key, "test")
                say("D", key)
            n += tasks

    await asyncio.gather(*(task(w) for w in range(tasks)))


if __name__ == "__main__":
    main()
