"""The per-model config.txt fragments and board/firstboot.sh.

The fragments are read as the firmware reads config.txt (the last ``[filter]``
rules the lines after it); firstboot.sh runs for real on a folder laid out like
a Raspberry Pi OS root (``HILNET_ROOT``), with the commands that would change
the machine (systemctl, useradd, apt-get, nmcli, the venv's pip) replaced by
stubs that record their arguments.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FC = ROOT / "firmware-config"
MODELS = {
    "pi3": "Raspberry Pi 3 Model B Plus Rev 1.3",
    "pi4": "Raspberry Pi 4 Model B Rev 1.5",
    "pi5": "Raspberry Pi 5 Model B Rev 1.0",
    "zero2w": "Raspberry Pi Zero 2 W Rev 1.0",
}


def active(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def effective(config: str, model_filter: str) -> list[str]:
    """The lines of ``config`` that apply on a board matching ``[model_filter]`` (and ``[all]``)."""
    on, out = True, []
    for raw in config.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            on = line[1:-1] in ("all", model_filter)
            continue
        if on:
            out.append(line)
    return out


@pytest.mark.parametrize("board", sorted(MODELS))
def test_fragment_starts_with_all_and_says_why(board: str) -> None:
    path = FC / board / "config.txt"
    assert active(path)[0] == "[all]"
    assert "Why [all] first" in path.read_text().split("\n[all]")[0]  # the why is said above it
    assert "uart0_console" not in " ".join(active(path))  # it would move the console into the link
    assert "serial0" not in " ".join(active(path))


@pytest.mark.parametrize("board", ["pi3", "pi4", "zero2w"])
def test_pl011_boards_get_the_uart_from_bluetooth(board: str) -> None:
    assert {"enable_uart=1", "dtoverlay=disable-bt"} <= set(active(FC / board / "config.txt"))


def test_pi5_enables_uart0_on_the_header() -> None:
    assert active(FC / "pi5" / "config.txt") == ["[all]", "dtoverlay=uart0-pi5"]


def test_appended_after_a_model_filter_it_still_applies_to_every_model() -> None:
    image = "arm_64bit=1\n[cm4]\notg_mode=1\n"
    for board in MODELS:
        text = image + (FC / board / "config.txt").read_text()
        assert set(active(FC / board / "config.txt")[1:]) <= set(effective(text, "pi4"))
        # Without its [all] the same lines would be lost on every board but a CM4.
        headless = text.replace("\n[all]\n", "\n")
        assert not set(active(FC / board / "config.txt")[1:]) & set(effective(headless, "pi4"))


STUBS = {
    "systemctl": "",
    "useradd": "",
    "chgrp": "",
    "apt-get": "",
    "chronyd": "",
    "nmcli": "",
    "id": "exit 1",  # no hilnet user yet
    "python3": 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; printf \'#!/bin/sh\\necho "venv-python $*" >> "$LOG"\\n\' > "$3/bin/python"; chmod +x "$3/bin/python"; fi',
}


def fake_root(tmp: Path, board: str) -> tuple[Path, dict[str, str]]:
    root = tmp / "root"
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(MODELS[board].encode() + b"\0")
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("arm_64bit=1\n[cm4]\notg_mode=1\n")
    (boot / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
    )
    bindir = tmp / "bin"
    bindir.mkdir()
    log = tmp / "log"
    for name, body in STUBS.items():
        stub = bindir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "$LOG"\n{body}\n')
        stub.chmod(0o755)
    env = dict(os.environ, HILNET_ROOT=str(root), LOG=str(log), PATH=f"{bindir}:{os.environ['PATH']}")
    return root, env


def firstboot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(FC / "board" / "firstboot.sh"), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("board", sorted(MODELS))
def test_firstboot_applies_the_models_fragment_once(tmp_path: Path, board: str) -> None:
    root, env = fake_root(tmp_path, board)
    node = tmp_path / "node.yaml"
    node.write_text("node: iss\neid: ipn:1.0\n")
    proc = firstboot(env, "--node", str(node), "--link-address", "10.77.1.1/24")
    assert proc.returncode == 0, proc.stderr
    config = (root / "boot" / "firmware" / "config.txt").read_text()
    assert set(active(FC / board / "config.txt")[1:]) <= set(effective(config, board))
    cmdline = (root / "boot" / "firmware" / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.endswith("rootwait\n")
    # On a Pi 5 serial0 is the debug connector: its console may stay.
    assert ("console=serial0,115200" in cmdline) == (board == "pi5")
    assert (root / "etc" / "hilnet" / "node.yaml").read_text() == node.read_text()
    assert (root / "etc" / "systemd" / "system" / "hilnet-agent.service").exists()
    assert (root / "etc" / "chrony" / "conf.d" / "hilnet.conf").exists()
    log = (tmp_path / "log").read_text()
    assert "useradd --system --shell /usr/sbin/nologin" in log
    assert "venv-python -m pip install --quiet --upgrade hilnet" in log
    assert ("systemctl disable hciuart.service" in log) == (board != "pi5")
    assert "nmcli connection add type ethernet ifname eth1" in log and "ipv4.never-default yes" in log
    # A second run changes no file.
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = firstboot(env)
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_firstboot_refuses_an_unknown_board(tmp_path: Path) -> None:
    root, env = fake_root(tmp_path, "pi4")
    (root / "proc" / "device-tree" / "model").write_bytes(b"Raspberry Pi Model B Rev 2\0")
    proc = firstboot(env)
    assert proc.returncode == 2 and "no fragment for 'Raspberry Pi Model B Rev 2'" in proc.stderr
