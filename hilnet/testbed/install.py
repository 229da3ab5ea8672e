"""``hilnet bench install``: this checkout, as a wheel, into a virtual environment on every board.

The wheel is built once from a copy of the source tree (so the checkout
gets no ``build/`` or ``*.egg-info``), then each board, on its own thread:
is skipped when its hilnet already has this identity (version and source
digest, :mod:`hilnet.testbed.identity`); else gets a virtual environment
made with its own Python, the wheel over the SSH connection, and ``pip
install`` of the light agent (no ``controller`` extra: no plotting stack on
a board). Its dependencies come from the board's package index, or from
``--find-links`` / ``--index-url`` when the lab has its own, or, for boards
without a network to an index, from a wheelhouse on this host that is copied
to each board (``--wheelhouse``) and installed from with ``--no-index``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import hilnet
from hilnet.bench.model import Bench, Board
from hilnet.clock import NS_PER_S, Clock, MonotonicClock
from hilnet.errors import TestbedError
from hilnet.testbed.boards import each, probe, ssh_config_of, venv_bin
from hilnet.testbed.identity import identity
from hilnet.testbed.ssh import SshBoard, control_dir, remote_path

PIP_TIMEOUT_S = 900.0  # a Pi Zero building nothing still takes minutes to install scapy


@dataclass(frozen=True)
class PipSource:
    """Where the boards' pip finds hilnet's dependencies (None: the board's own configuration)."""

    find_links: str | None = None
    index_url: str | None = None
    wheelhouse: str | None = None  # a directory of wheels HERE, copied to each board

    def args(self, remote_wheelhouse: str | None = None) -> list[str]:
        if remote_wheelhouse:
            return ["--no-index", "--find-links", remote_wheelhouse]
        out = []
        if self.find_links:
            out += ["--find-links", self.find_links]
        if self.index_url:
            out += ["--index-url", self.index_url]
        return out


def source_root() -> str:
    """The checkout this hilnet runs from; TestbedError when it is an installed copy."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(hilnet.__file__)))
    if not os.path.isfile(os.path.join(root, "pyproject.toml")):
        raise TestbedError(f"hilnet runs from {root}, not from a source checkout; run hilnet bench install from one")
    return root


def build_wheel(out_dir: str) -> str:
    """Build hilnet's wheel into ``out_dir`` from a copy of the checkout; returns its path."""
    root = source_root()
    src = os.path.join(out_dir, "src")
    shutil.copytree(
        os.path.join(root, "hilnet"), os.path.join(src, "hilnet"), ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(root, name), src)
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out_dir, src],
        capture_output=True,
        text=True,
    )
    wheels = [f for f in os.listdir(out_dir) if f.startswith("hilnet-") and f.endswith(".whl")]
    if p.returncode != 0 or not wheels:
        raise TestbedError(f"cannot build hilnet's wheel: {(p.stderr or p.stdout).strip()[-500:]}")
    return os.path.join(out_dir, wheels[0])


def install(
    bench: Bench,
    pip: PipSource,
    say: Callable[[str], None],
    boards: Sequence[Board] | None = None,
    clock: Clock | None = None,
) -> bool:
    """Install on every board (or ``boards``); one line per board to ``say``. True when all have it."""
    targets = list(boards or bench.boards)
    clock = clock or MonotonicClock()
    mine = identity()
    with tempfile.TemporaryDirectory(prefix="hilnet-wheel-") as tmp:
        wheel = build_wheel(tmp)
        sockets = control_dir()
        try:
            results = each(targets, lambda b: _install_one(bench, b, wheel, mine, pip, sockets, clock))
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
    ok = True
    for board in targets:
        outcome = results[board]
        if isinstance(outcome, Exception):
            ok = False
            say(f"FAIL  {board.name}: {outcome}")
        else:
            say(f"ok    {board.name}: {outcome}")
    return ok


def _install_one(bench: Bench, board: Board, wheel: str, mine: str, pip: PipSource, sockets: str, clock: Clock) -> str:
    ssh = SshBoard(board.name, board.ssh, sockets, ssh_config_of(bench), clock)
    ssh.connect()
    try:
        started = clock.now_ns()
        try:
            if probe(ssh, bench, board).get("identity") == mine:
                return f"hilnet {mine} already at {board.hilnet_dir} (skipped)"
        except TestbedError:
            pass  # none there yet, or another one: install
        venv = remote_path(board.hilnet_dir).rstrip("/")
        _step(ssh, board, [board.python, "-m", "venv", venv], "make the virtual environment (python3-venv installed?)")
        target = f"{venv}/{os.path.basename(wheel)}"
        with open(wheel, "rb") as f:
            _step(ssh, board, ["sh", "-c", 'cat > "$0"', target], "copy the wheel", data=f.read())
        house = _send_wheelhouse(ssh, board, pip.wheelhouse, f"{venv}/wheelhouse") if pip.wheelhouse else None
        python = venv_bin(board, "python")
        quiet = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pip.args(house)]
        # Same version number, other code: replace hilnet alone, then fetch what it needs.
        _step(ssh, board, [*quiet, "--no-deps", "--force-reinstall", target], "install hilnet")
        _step(ssh, board, [*quiet, target], "install hilnet's dependencies")
        _step(ssh, board, ["rm", "-rf", target, f"{venv}/wheelhouse"], "remove the wheel")
        got = probe(ssh, bench, board).get("identity")
        if got != mine:
            raise TestbedError(f"installed, but it reports hilnet {got}, not {mine}")
        return f"installed hilnet {mine} at {board.hilnet_dir} in {(clock.now_ns() - started) / NS_PER_S:.1f} s"
    finally:
        ssh.close()


def _send_wheelhouse(ssh: SshBoard, board: Board, wheelhouse: str, remote: str) -> str:
    """Copy every wheel of ``wheelhouse`` (here) to ``remote`` on the board, as one tar stream."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(os.listdir(wheelhouse)):
            if name.endswith(".whl"):
                tar.add(os.path.join(wheelhouse, name), arcname=name)
    _step(ssh, board, ["sh", "-c", 'mkdir -p "$0" && tar -C "$0" -xf -', remote], "copy the wheelhouse", buf.getvalue())
    return remote


def _step(ssh: SshBoard, board: Board, argv: list[str], what: str, data: bytes | None = None) -> None:
    p = ssh.run(argv, timeout_s=PIP_TIMEOUT_S, data=data)
    if p.returncode != 0:
        tail = p.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise TestbedError(f"cannot {what}: {' / '.join(tail) or f'exit {p.returncode}'}")
