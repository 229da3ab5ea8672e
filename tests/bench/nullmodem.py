"""A null-modem cable between pairs of ptys, for the emulated bench: ``python nullmodem.py A B [C D ...]``.

For each pair of paths it makes two pty pairs, links ``A`` and ``B`` to their
far (slave) sides and copies bytes between the two near (master) sides, so
whatever opens ``A`` talks to whatever opens ``B`` as over a crossed UART
cable. It holds no slave open: a side that nobody has open reads EIO, which
is waited out, as a UART with no one listening. Prints ``ready`` once the
links exist; SIGTERM removes them and exits.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import sys
import time
import tty


def make_pty(path: str) -> int:
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    tty.setraw(master)
    os.close(slave)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(name, path)
    os.set_blocking(master, False)
    return master


def main(paths: list[str]) -> None:
    sel = selectors.DefaultSelector()
    peer: dict[int, int] = {}
    for a, b in zip(paths[0::2], paths[1::2]):
        ma, mb = make_pty(a), make_pty(b)
        peer[ma], peer[mb] = mb, ma
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    for fd in peer:
        sel.register(fd, selectors.EVENT_READ)
    print("ready", flush=True)
    idle: dict[int, float] = {}
    while not stopping:
        now = time.monotonic()
        for fd, until in list(idle.items()):
            if until <= now:
                sel.register(fd, selectors.EVENT_READ)
                del idle[fd]
        for key, _ in sel.select(0.005):
            fd = key.fd
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if not data:  # nobody has the far side open: look again in a moment
                sel.unregister(fd)
                idle[fd] = now + 0.01
                continue
            out = memoryview(data)
            while out:
                try:
                    out = out[os.write(peer[fd], out) :]
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError as e:  # nobody at the far end: the bytes fall off the wire
                    if e.errno != errno.EIO:
                        raise
                    break
    for path in paths:
        if os.path.islink(path):
            os.unlink(path)


if __name__ == "__main__":
    main(sys.argv[1:])
