"""What the engine's loop waits on: one epoll over every running link's descriptors.

Each link says, per endpoint, which descriptors to watch and for what
(:meth:`Endpoint.interest`); reading pauses while a stream direction cannot
take more (outage, full queue, too much in flight), so that TCP's own flow
control holds the sender back. Loop thread only.
"""

from __future__ import annotations

import select

from hilnet.link.endpoints.base import READ, STREAM, Endpoint
from hilnet.link.links import Link, Side

STREAM_HIGH_BYTES = 1 << 20  # stream bytes in flight per direction before reading pauses


class Poller:
    """The loop's epoll, and which link each registered descriptor belongs to."""

    def __init__(self, wake_fd: int):
        self._epoll = select.epoll()
        self._epoll.register(wake_fd, READ)
        self._fd_link: dict[int, Link] = {}

    def poll(self, timeout_s: float) -> list[tuple[int, int]]:
        """Wait up to ``timeout_s`` (0: do not wait); returns (fd, event mask) pairs."""
        return self._epoll.poll(timeout_s)

    def link_of(self, fd: int) -> Link | None:
        return self._fd_link.get(fd)

    def sync(self, link: Link) -> None:
        """Register what ``link``'s endpoints want watched now, and nothing else."""
        link.dirty = False
        self._drop_gone(link)
        wanted: dict[int, int] = {}
        owner: dict[int, Endpoint] = {}
        for side in link.sides:
            ep = side.src
            for fd, mask in ep.interest(_reading(side)).items():
                wanted[fd] = mask
                owner[fd] = ep
        for fd in list(link.fds):
            if fd not in wanted:
                del link.fds[fd]
                if self._fd_link.get(fd) is link:
                    del self._fd_link[fd]
                try:
                    self._epoll.unregister(fd)
                except (OSError, ValueError):
                    pass  # already closed: epoll forgot it by itself
        for fd, mask in wanted.items():
            if link.fds.get(fd) != mask:
                self._watch(fd, mask, link.fds.get(fd) is None)
                link.fds[fd] = mask
                self._fd_link[fd] = link
        link.owner = owner

    def forget(self, link: Link) -> None:
        """Stop watching every descriptor of ``link``."""
        for fd in list(link.fds):
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            self._fd_link.pop(fd, None)
        link.fds.clear()

    def close(self) -> None:
        self._epoll.close()

    def _drop_gone(self, link: Link) -> None:
        for ep in (link.a, link.b):
            for fd in ep.gone_fds:
                # Closed by the endpoint: epoll dropped it already, and the number may
                # be reused by a new socket, so it must not be unregistered by number.
                if link.fds.pop(fd, None) is not None and self._fd_link.get(fd) is link:
                    del self._fd_link[fd]
            ep.gone_fds.clear()

    def _watch(self, fd: int, mask: int, new: bool) -> None:
        try:
            if new:
                self._epoll.register(fd, mask)
            else:
                self._epoll.modify(fd, mask)
        except FileExistsError:
            self._epoll.modify(fd, mask)
        except FileNotFoundError:
            self._epoll.register(fd, mask)


def _reading(side: Side) -> bool:
    if side.src.medium != STREAM:
        return True  # frames, datagrams, serial bytes: a down gate drops them
    d = side.direction
    if not d.accepting():
        return False  # outage or full queue: stall; TCP flow control holds the sender
    st = d.stats
    return st.bytes_in - st.bytes_out + side.dst.backlog_bytes() < STREAM_HIGH_BYTES
