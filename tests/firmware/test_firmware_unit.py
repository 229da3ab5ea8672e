"""The shipped systemd unit passes ``systemd-analyze verify`` and scores below 5 in ``security``.

Both run offline against the unit file: ``verify`` in a root folder that holds
the unit, the program it starts (``/opt/hilnet/bin/hilnet``) and the machine's
own system units (the targets it is ordered after), ``security
--offline=true`` on the file itself. Skips with the reason where systemd-analyze
is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "firmware-config" / "systemd" / "hilnet-agent.service"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (Debian package systemd)"
)


def _root_with_unit(tmp: Path) -> Path:
    root = tmp / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units / UNIT.name)
    # The targets the unit orders itself after, as the machine has them.
    for units_dir in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isdir(units_dir) and not (root / units_dir.lstrip("/")).exists():
            shutil.copytree(units_dir, root / units_dir.lstrip("/"), symlinks=True)
    exe = root / "opt" / "hilnet" / "bin" / "hilnet"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return root


def test_verify_passes(tmp_path: Path) -> None:
    root = _root_with_unit(tmp_path)
    proc = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            "--generators=no",
            f"--root={root}",
            f"/etc/systemd/system/{UNIT.name}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in proc.stderr.splitlines() if UNIT.name in line or "hilnet" in line]
    assert proc.returncode == 0 and not problems, proc.stderr


def exposure(unit: Path, root: Path | None = None) -> tuple[float, str]:
    cmd = ["systemd-analyze", "security", "--offline=true", "--no-pager"]
    if root is not None:
        cmd.append(f"--root={root}")
    proc = subprocess.run([*cmd, str(unit)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", proc.stdout)
    assert m, f"no exposure level in:\n{proc.stdout}\n{proc.stderr}"
    return float(m.group(1)), proc.stdout


def test_security_exposure_is_below_5() -> None:
    level, report = exposure(UNIT)
    assert level < 5, f"exposure {level} (5 and above is MEDIUM or worse):\n{report}"


def test_the_settings_the_issue_names_are_there() -> None:
    text = UNIT.read_text()
    for setting in (
        "StateDirectoryMode=0700",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestartPreventExitStatus=2",
        "ExecStart=/opt/hilnet/bin/hilnet agent",
    ):
        assert re.search(rf"^{re.escape(setting)}", text, re.M), setting
    # PrivateDevices would hide the UART the serial CLA opens.
    assert not re.search(r"^PrivateDevices=yes", text, re.M)


def test_the_unsafe_old_unit_would_fail(tmp_path: Path) -> None:
    # A guard on the guard: stripped of its hardening, the same unit scores high.
    bare = "\n".join(
        line
        for line in UNIT.read_text().splitlines()
        if not re.match(
            r"(Protect|Private|Restrict|NoNew|Capability|Ambient|System|Lock|Memory|Device|RemoveIPC|ProcSubset|UMask)",
            line,
        )
    )
    (tmp_path / UNIT.name).write_text(bare)
    level, _ = exposure(tmp_path / UNIT.name)
    assert level >= 5


def test_the_descriptor_limit_leaves_room_for_the_agents_connection_limit() -> None:
    """systemd's default of 1,024 descriptors was exhausted by 1,030 idle MTCP connections."""
    from hilnet.agent.cla.limits import FD_HEADROOM, connection_limit

    m = re.search(r"^LimitNOFILE=(\d+)$", UNIT.read_text(), re.M)
    assert m, "LimitNOFILE is not set: systemd's default soft limit is 1024"
    nofile = int(m.group(1))
    assert nofile >= 16384
    assert connection_limit(None, nofile) == nofile - FD_HEADROOM >= 10_000
