"""The modelled UART line of serial_sim is the link emulator's shaper, and every layer bounds bits per byte alike."""

import random

import pytest

from hilnet.agent.cla.serial_proto import SerialConfig
from hilnet.agent.cla.serial_sim import Channel
from hilnet.agent.cla.serial_timing import LinkTiming
from hilnet.agent.protocol import parse_command
from hilnet.errors import ControlError, LinkError, UnitError
from hilnet.link.shaper import Direction, DirectionConfig, Medium, ScheduleEvent

MS = 1_000_000
BAUD = 115200


def _drain(pop_due, next_wake, until_ns):
    """(time, bytes) of every delivery up to ``until_ns``, waking exactly when due."""
    out = []
    t = next_wake()
    while t is not None and t <= until_ns:
        data = pop_due(t)
        if data:
            out.append((t, data))
        t = next_wake()
    return out


def test_channel_delivers_what_the_emulators_direction_delivers():
    # Same config, seed and outage: same bytes (bit errors included) at the same nanoseconds.
    config = SerialConfig("ipn:1.0", BAUD, bits_per_byte=11)
    channel = Channel(config, 120 * MS, 1e-3, seed=7, outages=[(300 * MS, 400 * MS)])
    line = DirectionConfig(delay_ns=120 * MS, baud=BAUD, bits_per_byte=11, ber=1e-3)
    schedule = [ScheduleEvent(at_ns=300 * MS, up=False), ScheduleEvent(at_ns=400 * MS, up=True)]
    direction = Direction(line, Medium.SERIAL, seed=7, schedule=schedule)
    rng = random.Random(3)
    for t in range(0, 600 * MS, 50 * MS):
        data = rng.randbytes(500)
        channel.send(data, t)
        direction.accept(data, t)
    got = _drain(channel.receive, channel.next_ns, 2_000 * MS)
    want = _drain(lambda t: b"".join(u.data for u in direction.pop_due(t)), direction.next_wake_ns, 2_000 * MS)
    assert got == want
    assert channel.flipped == direction.stats.bits_flipped > 0
    assert channel.dropped == sum(direction.stats.drop_bytes.values()) > 0  # the outage and the cut lost bytes


@pytest.mark.parametrize("bits, ok", [(6, False), (7, True), (10, True), (12, True), (13, False)])
def test_every_layer_bounds_bits_per_byte_alike(bits, ok):
    line = (
        '{"cmd":"configure","node":"a","eid":"ipn:1.0","clas":[{"type":"serial","port":"/tmp/p",'
        f'"baud":115200,"peer":"ipn:2.0","bits_per_byte":{bits}}}]}}'
    )
    checks = [
        (lambda: LinkTiming(BAUD, bits), UnitError),
        (lambda: DirectionConfig(baud=BAUD, bits_per_byte=bits), LinkError),
        (lambda: parse_command(line), ControlError),
    ]
    for make, error in checks:
        if ok:
            make()
        else:
            with pytest.raises(error):
                make()
