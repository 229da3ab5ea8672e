"""The sans-I/O link shaper: one :class:`Direction` per link direction.

No sockets, ports or clocks here: the engine passes bytes and ``now_ns`` in and
takes units and deadlines out. One module per stage (gate, loss, corrupt,
transmitter = queue + serialiser, propagation); ``direction`` chains them.
"""

from hilnet.link.shaper.direction import Direction
from hilnet.link.shaper.types import (
    DROP_REASONS,
    DirectionConfig,
    DirectionStats,
    GateTransition,
    Medium,
    ScheduleEvent,
    Unit,
    error_bits,
    wire_bits,
)

__all__ = [
    "DROP_REASONS",
    "Direction",
    "DirectionConfig",
    "DirectionStats",
    "GateTransition",
    "Medium",
    "ScheduleEvent",
    "Unit",
    "error_bits",
    "wire_bits",
]
