import asyncio

import pytest

from hilnet.clock import Clock, MonotonicClock, VirtualClock


def test_virtual_clock_moves_only_when_told():
    c = VirtualClock(100)
    assert c.now_ns() == 100
    c.advance(50)
    assert c.now_ns() == 150
    c.sleep_until_ns(1_000)
    assert c.now_ns() == 1_000
    c.sleep_until_ns(10)  # in the past: no change
    assert c.now_ns() == 1_000
    with pytest.raises(ValueError):
        c.set(5)
    with pytest.raises(ValueError):
        c.advance(-1)


def test_virtual_clock_async_wait_jumps():
    c = VirtualClock()
    asyncio.run(c.wait_until_ns(3_600 * 10**9))
    assert c.now_ns() == 3_600 * 10**9


def test_clocks_satisfy_protocol():
    for c in (MonotonicClock(), VirtualClock()):
        assert isinstance(c, Clock)


def test_monotonic_clock_never_goes_back():
    c = MonotonicClock()
    a = c.now_ns()
    c.sleep_until_ns(a)  # a deadline already reached returns at once
    assert c.now_ns() >= a
