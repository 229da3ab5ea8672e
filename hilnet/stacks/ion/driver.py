"""The driver of a node with ``stack: ion``: NASA's ION run with its own programs.

Everything of the node lives in the run folder's ``stacks/NODE/``: the rc
files (:mod:`~hilnet.stacks.ion.rcfiles`), ION's SDR file and ``ion.log``,
``watch.log`` (the watch tokens of ION's daemons, which write to the stdout
they inherited from the admin programs), the payloads it was given to send
(``outbox/``: ION sends a file's bytes from the file itself, so they stay)
and what it delivered (``inbox-N/``, one folder per start, since
``bprecvfile`` numbers its files from 1 again).

Events come from reading ``watch.log`` and ``ion.log`` as they grow, in
:meth:`IonDriver.check`; they are stamped with the controller's clock when
read, so they are late by up to one check period (tens of ms). An injection
is ``bpsendfile``, whose own watch token ``a`` names the bundle it made.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from typing import ClassVar

from hilnet.agent.cla_config import SerialConfig, TcpclV3Config
from hilnet.agent.events import Event, Log
from hilnet.agent.payload import payload_for
from hilnet.bundle.eid import parse_eid
from hilnet.clock import Clock, WallClock, realtime_ns
from hilnet.errors import HilnetError, StackError
from hilnet.scenario.ion import export_ion
from hilnet.stacks.base import EventSink, InjectRequest, NodeView, Observes, OnInjected, StackStatus
from hilnet.stacks.ion import rcfiles
from hilnet.stacks.ion.bplist import Listing, parse_bplist
from hilnet.stacks.ion.log import LineStream, file_created, noteworthy, parse_line
from hilnet.stacks.ion.namespace import IonNamespace
from hilnet.stacks.ion.tracker import BundleTracker
from hilnet.stacks.ion.watch import WatchStream
from hilnet.stacks.ion.worker import Worker
from hilnet.stacks.ion_install import require_ion

ADMIN_TIMEOUT_S = 30.0
PRIORITY = {"bulk": 0, "normal": 1, "expedited": 2}  # ION's class of service (bp_parse_quality_of_service)
POLL_S = 1.0  # how often bplist is asked about bundles ION's CL has (only while there are some)

OBSERVES = Observes(
    frozenset(("received", "stored", "forwarded", "sent", "delivered", "expired", "dropped")),
    stored=True,
    crash=True,
    note="ION's watch tokens and bplist: no acked (sent once ION's CL is done with a bundle), "
    "no refusals; sizes only where injected or delivered",
)


class IonDriver:
    """The :class:`~hilnet.stacks.base.StackDriver` of a node with ``stack: ion``."""

    stack: ClassVar[str] = "ion"
    observes: ClassVar[Observes] = OBSERVES
    # Each ION node needs its own IPC and mount namespace (docs/stacks.md), made as root
    # beside the node's network namespace; loopback runs without privileges, a bench has boards.
    backends: ClassVar[frozenset[str]] = frozenset({"netns"})

    @staticmethod
    def delivery_eid(node_eid: str) -> str:
        """The endpoint a bundle for this node is addressed to (its ipn:N.0 is ION's own)."""
        return rcfiles.app_eid(node_eid)

    def __init__(self, view: NodeView, clock: Clock, sink: EventSink):
        self.view, self.clock, self.sink = view, clock, sink
        self.node = _check_node(view)
        self.install = require_ion()
        self.folder = self.node.folder
        self.log_path = os.path.join(self.folder, "ion.log")
        self.watch_path = os.path.join(self.folder, "watch.log")
        protocols = {n.protocol for n in self.node.neighbours}
        cla = "tcpclv3" if protocols == {"tcp"} else "ltp" if protocols == {"ltp"} else "ion"
        only = self.node.neighbours[0].name if len(self.node.neighbours) == 1 else None
        self.tracker = BundleTracker(view.name, self.node.eid, only, cla)
        self.ns = IonNamespace(view.name, view.runtime.netns, self.install.env())
        self._lock = threading.Lock()  # the tracker and the readers: check() and inject() run on different threads
        self._watch, self._lines = WatchStream(), LineStream()
        self._offsets = {self.watch_path: 0, self.log_path: 0}
        self._starts = 0
        self.node_has_ltp = False
        self._stopped = False  # stop() began: ION's tokens are its shutdown's, not the run's
        self._gone = ""  # why ION ended while its holder lives, as the poller found it
        self.worker = Worker(f"ion-{view.name}-commands")
        self._export: str | None = None  # the plan's ION contact lines (arm)
        self._inbox = ""
        self._sent = 0
        self.on_purpose = False
        self._poller: threading.Thread | None = None
        self._stop_poll = threading.Event()

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        os.makedirs(os.path.join(self.folder, "outbox"), exist_ok=True)
        files = {
            "ion.cfg": rcfiles.ionconfig(self.node),
            "node.ionrc": rcfiles.node_ionrc(self.node, os.path.join(self.folder, "ion.cfg")),
            "node.bprc": rcfiles.bprc(self.node),
        }
        ltp = rcfiles.ltprc(self.node)
        self.node_has_ltp = ltp is not None
        if ltp is not None:
            files["node.ltprc"] = ltp
        for name, text in files.items():
            with open(os.path.join(self.folder, name), "w") as f:
                f.write(text)
        self.on_purpose = False
        self._stopped = False
        self._gone = ""
        self._starts += 1
        self.ns.start()
        self._admin("ionadmin", "node.ionrc")
        if ltp is not None:
            self._admin("ltpadmin", "node.ltprc")
        self._admin("bpadmin", "node.bprc")
        self._inbox = os.path.join(self.folder, f"inbox-{self._starts}")
        os.makedirs(self._inbox, exist_ok=True)
        with open(self.watch_path, "ab") as out:
            self.ns.spawn([self.install.program("bprecvfile"), self.node.eid], self._inbox, out.fileno())
        self.worker.start()
        self._stop_poll = threading.Event()
        self._poller = threading.Thread(
            target=self._poll, args=(self._stop_poll,), name=f"ion-{self.view.name}", daemon=True
        )
        self._poller.start()

    def _poll(self, stop: threading.Event) -> None:
        """Ask bplist, while ION's CL has bundles, which it still holds (the rest it sent)."""
        while not stop.wait(POLL_S):
            if not stop.is_set() and not self.ns.running("rfxclock"):
                # ION's clock daemon runs as long as the node does; without it the node is gone
                # though the namespace holder lives (e.g. killm, which kills ION by name host-wide).
                self._gone = "its daemons are gone (rfxclock ended), with nothing here asking"
                return
            with self._lock:
                asked = self.tracker.forwarded()
            if not asked:
                continue
            try:
                # No timeout: bplist works inside an SDR transaction, and ION shuts
                # itself down when a process is killed in one (seen: a bplist killed
                # after 10 s stopped the whole node). It ends when ION does.
                listing = self._list("detail", None)
            except HilnetError:
                continue  # ION going down: ask again next time
            if listing is not None and not stop.is_set():
                with self._lock:
                    self._emit(self.tracker.listed(listing.keys, self.clock.now_ns(), asked))

    def _list(self, what: str, timeout_s: float | None) -> Listing | None:
        p = self.ns.run([self.install.program("bplist"), what], self.folder, timeout_s)
        return parse_bplist(p.stdout.decode(errors="replace"))

    def _end_poll(self) -> None:
        self._stop_poll.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(2)  # one blocked in bplist ends with ION (stop, crash)

    def _admin(self, program: str, rc: str) -> None:
        with open(self.watch_path, "ab") as out:  # the daemons it starts keep this stdout: their watch tokens
            p = self.ns.run(
                [self.install.program(program), os.path.join(self.folder, rc)],
                self.folder,
                ADMIN_TIMEOUT_S,
                stdout=out.fileno(),
            )
        if p.returncode != 0:
            raise StackError(
                f"ION node {self.view.name}: {program} {rc} failed (status {p.returncode}); see {self.log_path}"
            )

    def clock_offset(self) -> tuple[int, int]:
        return 0, 0  # events are stamped with the controller's own clock when read

    def arm(self) -> None:
        """ION was configured at start; what is left before t0 is the contact plan's text."""
        self._export = export_ion(self.view.scenario, self.view.plan)

    def configure(self, t0_ns: int) -> None:
        """Write the contacts against t0 and have ION read them (on the node's worker: ION may be slow to)."""
        wall = self.clock.wall_ns() if isinstance(self.clock, WallClock) else realtime_ns()
        t0_unix = wall + (t0_ns - self.clock.now_ns())
        export = self._export if self._export is not None else export_ion(self.view.scenario, self.view.plan)
        text = rcfiles.contacts_ionrc(export, t0_unix)
        with open(os.path.join(self.folder, "contacts.ionrc"), "w") as f:
            f.write(text)

        def failed(why: str) -> None:
            self._gone = self._gone or f"its contact plan was not loaded: {why}"

        def load() -> None:
            try:
                self._admin("ionadmin", "contacts.ionrc")
            except HilnetError as e:
                failed(str(e))

        self.worker.submit(load, failed)

    def inject(self, request: InjectRequest, on_done: OnInjected) -> None:
        a = request.action
        self._sent += 1
        path = os.path.join(self.folder, "outbox", f"{self._sent}-{request.tag.replace('#', '-')}.bin")
        with open(path, "wb") as f:
            f.write(payload_for(request.seed, a.size))
        ttl = max(1, math.ceil(request.lifetime_wall_ns / 1e9))
        cos = f"0.{PRIORITY.get(a.priority, 1)}.{a.ordinal}"
        argv = [self.install.program("bpsendfile"), rcfiles.send_eid(self.node.eid), request.dest_eid, path, cos]
        argv.append(str(ttl))
        self.worker.submit(
            lambda: self._send(argv, request, on_done),
            lambda why: on_done(StackError(f"ION node {self.view.name} did not take {request.tag}: {why}")),
        )

    def _send(self, argv: list[str], request: InjectRequest, on_done: OnInjected) -> None:
        try:
            p = self.ns.run(argv, self.folder, ADMIN_TIMEOUT_S)
        except HilnetError as e:
            on_done(e)
            return
        sourced = [s for s in WatchStream().feed(p.stdout) if s.letter == "a"]
        if not sourced:
            out = p.stdout.decode(errors="replace").strip()[-200:]
            on_done(StackError(f"ION node {self.view.name}: bpsendfile made no bundle ({out}); see {self.log_path}"))
            return
        size = request.action.size
        with self._lock:
            key, events = self.tracker.injected(sourced[0], request.dest_eid, size, request.tag, self.clock.now_ns())
            self._emit(events)
        on_done(key)

    def status(self, timeout_s: float) -> StackStatus:
        listing = self._list("count", timeout_s)
        if listing is None:
            raise StackError(f"ION node {self.view.name}: bplist gave no count; see {self.log_path}")
        with self._lock:
            _bundles, nbytes = self.tracker.held()
        return StackStatus(listing.count, None, {"bplist": listing.count, "watched_bytes": nbytes})

    def crash(self) -> None:
        self.on_purpose = True
        self._end_poll()
        self.worker.stop("it was crashed", timeout_s=0)
        self.check()  # what ION said before it died is still to be read
        self.ns.kill_all()

    def stop(self) -> None:
        self.on_purpose = True
        self._end_poll()
        self.worker.stop("it was stopped")
        # Read what ION said up to now; what it says while it stops is not the run's: stopping
        # its plans prints an "abandoned" token for each bundle still queued, which stays in
        # the SDR all the same.
        self.check()
        self._stopped = True
        if self.ns.alive():
            # Not ionstop: it ends with killm, which kills every ION process on the host
            # by name, other nodes' and other runs' too. Each admin's own "x" stops its part.
            stops = [("bpadmin", "stop.bprc")] + ([("ltpadmin", "stop.ltprc")] if self.node_has_ltp else [])
            for program, rc in [*stops, ("ionadmin", "stop.ionrc")]:
                with open(os.path.join(self.folder, rc), "w") as f:
                    f.write("x\n")
                try:
                    self._admin(program, rc)
                except HilnetError:
                    break  # kill_all below
        self.ns.kill_all()

    def alive(self) -> bool:
        return self.ns.alive()

    # -- what ION says --------------------------------------------------------------------

    def check(self) -> str | None:
        if self._stopped:
            return None
        with self._lock:
            now = self.clock.now_ns()
            for s in self._watch.feed(self._read(self.watch_path)):
                self._emit(self.tracker.sighting(s, now))
            for raw in self._lines.feed(self._read(self.log_path)):
                self._log_line(raw, now)
        if not self.on_purpose and self.ns.holder is not None and not self.ns.alive():
            return f"ION node {self.view.name} ended on its own; see {self.log_path}"
        if not self.on_purpose and self._gone:
            return (
                f"ION node {self.view.name} ended on its own: {self._gone} (another ionstop or killm on this "
                f"host kills every ION process); see {self.log_path}"
            )
        return None

    def _log_line(self, raw: str, now: int) -> None:
        line = parse_line(raw)
        created = file_created(line)
        if created is not None:
            path = os.path.join(self._inbox, created.name)
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError as e:
                self.sink.unreadable(self.view.name, f"ION delivered {path} but it cannot be read: {e.strerror}")
                return
            self._emit(self.tracker.delivered_file(created.name, created.size, digest, now))
        elif noteworthy(line):
            self._emit([Log(t_ns=now, node=self.view.name, level=line.level, message=f"ION: {line.text}")])

    def _read(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(self._offsets[path])
                data = f.read(1 << 20)
        except OSError:
            return b""
        self._offsets[path] += len(data)
        return data

    def _emit(self, events: list[Event]) -> None:
        for e in events:
            self.sink.event(self.view.name, e)


def _check_node(view: NodeView) -> rcfiles.IonNode:
    """The node as ION will run it, or a StackError saying why it cannot."""
    rt = view.runtime
    eid = parse_eid(view.eid)
    if eid.node_number is None:
        raise StackError(f"node {view.name}: ION names nodes by ipn number; its eid {view.eid} is not ipn:N.S")
    if rt.netns is None:
        raise StackError(
            f"node {view.name}: ION nodes need the netns backend (each runs in its own network, IPC and mount "
            "namespace, as root); run with --backend netns"
        )
    serial = [c for c in rt.clas if isinstance(c, SerialConfig)]
    if serial:
        raise StackError(
            f"node {view.name}: ION has no serial convergence layer (port {serial[0].port}); make its links ethernet"
        )
    links = {ln.name: ln for ln in view.scenario.links}
    numbers = {n.name: parse_eid(n.eid).node_number for n in view.scenario.nodes}
    neighbours = []
    for nb in rt.neighbours:
        nbr = numbers.get(nb.name)
        if nbr is None:
            raise StackError(f"node {view.name}: neighbour {nb.name} has no ipn node number; ION cannot reach it")
        link = links.get(nb.link)
        ltp = link is not None and link.convergence_layer == "ltp"  # else tcpclv3: the loader allows no other
        neighbours.append(rcfiles.IonNeighbour(nb.name, nbr, "ltp" if ltp else "tcp", nb.host))
    folder = os.path.abspath(os.path.join(view.run_dir, "stacks", view.name))
    v3 = [c for c in rt.clas if isinstance(c, TcpclV3Config) and c.listen is not None]
    port = v3[0].listen.port if v3 and v3[0].listen is not None else rcfiles.TCP_PORT  # the backend's TCPCLv3 port
    return rcfiles.IonNode(view.name, rcfiles.app_eid(view.eid), folder, tuple(neighbours), port)
