"""What a board says about itself, as one JSON object: run there as ``python -m hilnet.testbed.board_probe``.

The bench backend and ``hilnet doctor`` run it over SSH with the board's
ports as arguments; it answers in one round trip: hilnet's identity, whether
the kernel clock is synchronised (adjtimex, as ``timedatectl`` reads it), the
free space where the stores go, and for each UART and interface whether it
is there, usable and not taken (a serial console on a UART). Standard library
only: it runs on the light board install.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import sys

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


def clock_synchronised() -> bool | None:
    """True/False from the kernel's NTP state; None when it cannot be read."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def free_bytes(path: str) -> int | None:
    probe = os.path.abspath(os.path.expanduser(path))
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe or "/")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _console_names() -> set[str]:
    try:
        with open("/proc/cmdline") as f:
            words = f.read().split()
    except OSError:
        return set()
    names = {w.split("=", 1)[1].split(",")[0] for w in words if w.startswith("console=")}
    resolved = set(names)
    for n in names:
        dev = f"/dev/{n}"
        if os.path.islink(dev):
            resolved.add(os.path.basename(os.path.realpath(dev)))
    return resolved


def _holders(real: str) -> list[str]:
    """``comm[pid]`` of the processes that have ``real`` open (those this user may look at)."""
    out = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == real:
                    with open(f"/proc/{pid}/comm") as f:
                        out.append(f"{f.read().strip()}[{pid}]")
                    break
            except OSError:
                continue
    return out


def uart_facts(dev: str) -> dict:
    real = os.path.realpath(dev)
    facts: dict = {"exists": os.path.exists(dev), "device": real}
    if not facts["exists"]:
        return facts
    try:
        fd = os.open(dev, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.close(fd)
        facts["openable"] = True
    except OSError as e:
        facts["openable"] = False
        facts["error"] = e.strerror or str(e)
    facts["console"] = os.path.basename(real) in _console_names() or os.path.basename(dev) in _console_names()
    facts["holders"] = _holders(real)
    return facts


def nic_facts(name: str) -> dict:
    base = f"/sys/class/net/{name}"
    if not os.path.isdir(base):
        return {"exists": False}
    try:
        with open(f"{base}/operstate") as f:
            state = f.read().strip()
        with open(f"{base}/flags") as f:
            up = bool(int(f.read().strip(), 16) & 1)
    except (OSError, ValueError):
        state, up = "unknown", False
    return {"exists": True, "up": up, "operstate": state}


def probe(store: str, uarts: list[str], nics: list[str]) -> dict:
    from hilnet.testbed.identity import identity

    return {
        "identity": identity(),
        "python": sys.version.split()[0],
        "clock_synchronised": clock_synchronised(),
        "store_free_bytes": free_bytes(store),
        "uarts": {d: uart_facts(d) for d in uarts},
        "nics": {n: nic_facts(n) for n in nics},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hilnet.testbed.board_probe")
    ap.add_argument("--store", default=".")
    ap.add_argument("--uart", action="append", default=[])
    ap.add_argument("--nic", action="append", default=[])
    args = ap.parse_args(argv)
    json.dump(probe(args.store, args.uart, args.nic), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
