"""RankedTurns: who writes the next bundle on a CLA that cannot interleave (MTCP), by class of service."""

from __future__ import annotations

import asyncio

from hilnet.agent.cla.turns import RankedTurns
from hilnet.bundle.cos import Priority, rank_of

BULK, STANDARD = rank_of(Priority.BULK), rank_of(Priority.STANDARD)


def test_waiters_get_the_turn_by_rank_then_in_order_of_asking():
    async def main():
        turns = RankedTurns()
        order: list[str] = []
        await turns.acquire(BULK)  # a bulk bundle is being written

        async def sender(name: str, rank: int) -> None:
            await turns.acquire(rank)
            order.append(name)
            await asyncio.sleep(0)
            turns.release()

        tasks = [
            asyncio.create_task(sender(n, r))
            for n, r in [
                ("bulk-2", BULK),
                ("std", STANDARD),
                ("exp-low", rank_of(Priority.EXPEDITED, 1)),
                ("bulk-3", BULK),
                ("exp-high", rank_of(Priority.EXPEDITED, 9)),
            ]
        ]
        await asyncio.sleep(0.01)
        assert order == [] and turns.waiting == 5
        turns.release()
        await asyncio.gather(*tasks)
        assert order == ["exp-high", "exp-low", "std", "bulk-2", "bulk-3"]

    asyncio.run(main())


def test_a_waiter_that_gives_up_passes_the_turn_on():
    async def main():
        turns = RankedTurns()
        await turns.acquire(BULK)
        quitter = asyncio.create_task(turns.acquire(rank_of(Priority.EXPEDITED)))
        late = asyncio.create_task(turns.acquire(BULK))
        await asyncio.sleep(0.01)
        turns.release()  # hands the turn to the expedited waiter ...
        quitter.cancel()  # ... which gives up before it runs
        await asyncio.wait_for(late, 1)  # the turn went on to the next one, not lost
        turns.release()
        await asyncio.wait_for(turns.acquire(BULK), 1)  # and it is free again

    asyncio.run(main())
