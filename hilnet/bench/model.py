"""The bench as frozen, typed values: what ``load.py`` builds and the bench backend reads.

A bench is a lab's inventory: boards reachable over SSH, the scenario node
each one plays, and for every link end of a node on a board its wiring — the
board's port (a UART device or a network interface with its address) and the
emulator host's port it is cabled to (a serial device, ``rfc2217://host:port``
for a port served by ser2net on another host, or a NIC / VLAN interface).
The scenario stays hardware-free; a node the bench does not map runs
virtually on the emulator host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Model = Literal["pi3", "pi4", "pi5", "zero2w"]
MODELS: tuple[Model, ...] = ("pi3", "pi4", "pi5", "zero2w")

DEFAULT_HILNET_DIR = ".hilnet/venv"  # relative paths on a board are under the SSH user's home
DEFAULT_STORE_DIR = ".hilnet/stores"
DEFAULT_PYTHON = "python3"


@dataclass(frozen=True, slots=True)
class Power:
    """Commands run on the emulator host (argument lists, never shell text) to switch a board."""

    off: tuple[str, ...]
    on: tuple[str, ...]
    cycle: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Board:
    name: str
    ssh: str  # an SSH destination: [user@]host, or a Host of the ssh configuration
    model: Model
    hilnet_dir: str  # the virtual environment hilnet is installed in (bin/hilnet, bin/python)
    store_dir: str  # where the run's stores go on the board
    python: str  # the board's Python that `hilnet bench install` makes the environment with
    power: Power | None = None
    line: int = 0  # where the board is defined in the bench file (1-based; 0: unknown)


@dataclass(frozen=True, slots=True)
class UartEnd:
    """A serial link end: the board's UART cabled to an emulator-side serial port."""

    board_port: str  # device on the board, e.g. /dev/ttyAMA0
    emulator_port: str  # a device path on the emulator host, or rfc2217://host:port
    rtscts: bool = False  # RTS/CTS wired too: both ends use hardware flow control


@dataclass(frozen=True, slots=True)
class NicEnd:
    """An Ethernet link end: a board interface cabled to an emulator-host NIC (or VLAN interface)."""

    board_port: str  # interface on the board, e.g. eth1
    address: str  # the board interface's address with its prefix, e.g. 10.79.1.1/24
    emulator_port: str  # interface on the emulator host, e.g. enx00e04c680001 or eth2.101


End = UartEnd | NicEnd


@dataclass(frozen=True, slots=True)
class Bench:
    name: str
    version: int
    boards: tuple[Board, ...]
    nodes: tuple[tuple[str, str], ...]  # (scenario node, board name), in file order
    wiring: tuple[tuple[str, str, End], ...]  # (link, node, end)
    ssh_config: str | None = None  # an ssh_config file the controller passes with -F (absolute)
    source: str = "<bench>"

    def board(self, name: str) -> Board:
        for b in self.boards:
            if b.name == name:
                return b
        raise KeyError(name)

    def board_of(self, node: str) -> Board | None:
        """The board that plays ``node``; None when the node runs virtually."""
        for n, b in self.nodes:
            if n == node:
                return self.board(b)
        return None

    def end(self, link: str, node: str) -> End | None:
        for ln, n, end in self.wiring:
            if ln == link and n == node:
                return end
        return None
