"""Pty pairs joined by a byte relay: a serial line between two CLAs without hardware.

Each CLA opens a symlink to its pty's slave side, as it would /dev/ttyUSB0
(and as the link emulator's pty endpoint lays it out). The relay only copies
bytes, so timing is the CLAs' own pacing on the real clock.
"""

import asyncio
import os
import tty


class Pty:
    """A pty pair whose slave is reachable through ``path`` (a symlink)."""

    def __init__(self, path):
        self.path = path
        self.open()

    def open(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.path + ".tmp"
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, self.path)

    def close(self):
        os.close(self.master)
        os.close(self.slave)


class Relay:
    """Copies bytes between two pty masters, non-blocking, in the event loop."""

    def __init__(self, a: Pty, b: Pty):
        self.a, self.b = a, b
        self.loop = asyncio.get_running_loop()
        self.bufs = {}
        self.cut = False
        self.attach()

    def attach(self):
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            self.bufs[dst.master] = bytearray()
            self.loop.add_reader(src.master, self._copy, src, dst)

    def detach(self):
        for p in (self.a, self.b):
            self.loop.remove_reader(p.master)
            self.loop.remove_writer(p.master)

    def _copy(self, src, dst):
        try:
            data = os.read(src.master, 65536)
        except OSError:
            return
        if self.cut:
            return  # an outage drops what is on the line, as in space
        self.bufs[dst.master] += data
        self._write(dst)

    def _write(self, dst):
        buf = self.bufs[dst.master]
        try:
            n = os.write(dst.master, buf)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        del buf[:n]
        if buf:
            self.loop.add_writer(dst.master, self._write, dst)
        else:
            self.loop.remove_writer(dst.master)
