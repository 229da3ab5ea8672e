"""The boards of a bench over SSH, together: connect in parallel, probe, run hilnet there.

Shared by the bench backend, ``hilnet bench install`` and ``hilnet doctor``.
Every board is handled on its own thread: a lab with ten boards waits for
the slowest, not for the sum.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from hilnet.bench.model import Bench, Board, NicEnd, UartEnd
from hilnet.errors import HilnetError, TestbedError
from hilnet.testbed.ssh import SshBoard, remote_path

T = TypeVar("T")
SSH_CONFIG_ENV = "HILNET_SSH_CONFIG"  # an ssh_config file that overrides the bench's ssh-config


def ssh_config_of(bench: Bench) -> str | None:
    return os.environ.get(SSH_CONFIG_ENV) or bench.ssh_config


def venv_bin(board: Board, program: str) -> str:
    return f"{remote_path(board.hilnet_dir).rstrip('/')}/bin/{program}"


def each(items: Iterable[T], fn: Callable[[T], object]) -> dict[T, object]:
    """``fn(item)`` for every item on its own thread; item -> result, or the HilnetError it raised."""
    results: dict[T, object] = {}

    def one(item: T) -> None:
        try:
            results[item] = fn(item)
        except HilnetError as e:
            results[item] = e

    threads = [threading.Thread(target=one, args=(i,), name="board") for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def ports_of(bench: Bench, board: Board) -> tuple[list[str], list[str]]:
    """(UART devices, interfaces) of ``board`` that the bench wires."""
    nodes = {n for n, b in bench.nodes if b == board.name}
    uarts = [e.board_port for _, n, e in bench.wiring if n in nodes and isinstance(e, UartEnd)]
    nics = [e.board_port for _, n, e in bench.wiring if n in nodes and isinstance(e, NicEnd)]
    return uarts, nics


def probe(ssh: SshBoard, bench: Bench, board: Board) -> dict:
    """The board's own account of itself (:mod:`hilnet.testbed.board_probe`)."""
    uarts, nics = ports_of(bench, board)
    argv = [venv_bin(board, "python"), "-m", "hilnet.testbed.board_probe", "--store", remote_path(board.store_dir)]
    for u in uarts:
        argv += ["--uart", u]
    for n in nics:
        argv += ["--nic", n]
    p = ssh.run(argv)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise TestbedError(
            f"board {board.name}: no hilnet at {board.hilnet_dir} ({err[-1] if err else f'exit {p.returncode}'}); "
            f"run: hilnet bench install {bench.source}"
        )
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise TestbedError(f"board {board.name}: its probe answered {p.stdout[:200]!r}, not JSON") from None
