"""``pty:///path/to/link``: a pseudo-terminal an agent opens like a UART.

The engine creates a pty pair, puts the far (slave) side in raw mode and makes
``/path/to/link`` a symlink to it, so an agent or a person opens that path as
it would ``/dev/ttyUSB0``. The link's baud is applied by the shaper's SERIAL
medium (a pty itself has no line speed).

The engine keeps its own descriptor on the slave side open for the whole run:
without it, the master reads EIO (and the kernel discards buffered bytes)
every time the agent closes the pty, e.g. when it restarts after ``kill -9``.
The symlink is removed on close, but only if it still points to this pty.
"""

from __future__ import annotations

import os
import tty
from dataclasses import dataclass

from hilnet.errors import EndpointError, SpecError
from hilnet.link.endpoints.base import SpecText
from hilnet.link.endpoints.serial import TtyEndpoint


@dataclass(frozen=True, slots=True)
class PtySpec:
    """Where to put the symlink to the far side of a new pty pair."""

    text: str
    path: str


def parse(st: SpecText) -> PtySpec:
    st.take(set())
    path = st.path if not st.netloc else f"{st.netloc}{st.path}"
    if not path or path.endswith("/"):
        raise SpecError(f"{st.text!r}: no path for the pty symlink; expected pty:///tmp/iss-uart")
    return PtySpec(st.text, path)


class PtyEndpoint(TtyEndpoint):
    """The master side of a pty pair; ``link_path`` points at the slave."""

    def __init__(self, spec: PtySpec, label: str = ""):
        path = spec.path
        if os.path.lexists(path) and not os.path.islink(path):
            raise EndpointError(f"{spec.text}: {path} exists and is not a symlink; refusing to replace it")
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            self.slave_name = os.ttyname(slave)
            tmp = f"{path}.{os.getpid()}.tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, path)  # atomic: an agent polling the path never sees it missing
        except OSError as e:
            os.close(master)
            os.close(slave)
            raise EndpointError(f"{spec.text}: cannot create pty link {path}: {e.strerror or e}") from None
        self.slave_fd = slave
        self.link_path = path
        super().__init__(spec, label or path, master, 4096)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if os.path.islink(self.link_path) and os.readlink(self.link_path) == self.slave_name:
                os.unlink(self.link_path)
        except OSError:
            pass
        for fd in (self.fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        super().close()


def open_endpoint(spec: PtySpec, label: str = "") -> PtyEndpoint:
    return PtyEndpoint(spec, label)
