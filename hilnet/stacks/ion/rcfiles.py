"""An ION node's configuration files, from its view of the plan. Pure: text in, text out.

ION 4.1.3 reads (each admin program its own file, as ``ionstart`` runs them):

- ``ion.cfg`` (ionconfig): the SDR kept in a file in the node's folder
  (``configFlags 7``: in memory, written through to the file, with a
  transaction log), so a node killed with ``kill -9`` finds its bundles when
  it starts again on the same folder. ION insists on its default SDR and
  shared-memory names on a host with one ION (``checkNodeListParms``): each
  node gets its own IPC namespace and ``/dev/shm`` instead.
- ``node.ionrc``: ``1 NODE 'ion.cfg'`` and ``s``. The contacts and ranges come
  later, in ``contacts.ionrc``, once the run's start is known.
- ``contacts.ionrc``: ``@ t0`` (the run's start, UTC) and then the plan's
  ``a contact`` / ``a range`` lines as ``hilnet contacts export`` writes them
  (:func:`hilnet.scenario.ion.export_ion`), relative to that reference.
- ``node.bprc``: watch on (``w 1``, the events), the ipn scheme, the node's
  endpoints, and per neighbour an outduct and an egress plan. TCPCL (version 3
  in ION) listens on port 4557, where hilnet's agents listen for TCPCLv3 on the
  netns backend (their TCPCLv4 has 4556), so every node of a ``cl: tcpclv3``
  link is found on the same port; LTP on UDP 1113, ION's default.
- ``node.ltprc``: one span per LTP neighbour (only when there is one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from hilnet.bundle.eid import parse_eid

TCP_PORT = 4557  # TCPCLv3's port when the backend names none (netns: hilnet's agents listen there too)
LTP_PORT = 1113  # ION's udplsi default
# SDR heap: 4 Mi words (32 MiB on 64-bit) holds a run's bundles with room; the
# payloads ION receives go to files in its folder past a threshold anyway.
HEAP_WORDS = 4_000_000
WM_SIZE = 50_000_000  # ION's working memory (bytes), its volatile tables
LTP_SEGMENT = 1400  # bytes: one segment per Ethernet frame
# The service an ION node's payloads are delivered to and sent from. A node's own
# id, ipn:N.0, is ION's administrative endpoint (ipnadminep reads what arrives
# there as status reports), so applications use another service. An ION
# endpoint has one reader, bprecvfile, so bundles go out from a second one.
APP_SERVICE = 1
SEND_SERVICE = 2


def app_eid(node_eid: str) -> str:
    """Where an ION node with id ``node_eid`` (``ipn:N.0``) takes payloads: ``ipn:N.1``."""
    n = parse_eid(node_eid).node_number
    if n is None:
        raise ValueError(f"{node_eid} is not an ipn EID")
    return f"ipn:{n}.{APP_SERVICE}"


def send_eid(node_eid: str) -> str:
    """The endpoint an ION node's injected bundles come from: ``ipn:N.2``."""
    return app_eid(node_eid).rsplit(".", 1)[0] + f".{SEND_SERVICE}"


@dataclass(frozen=True, slots=True)
class IonNeighbour:
    """A node this ION node sends to: its ipn node number, convergence layer and address."""

    name: str
    node_nbr: int
    protocol: str  # "tcp" (TCPCLv3) or "ltp"
    host: str


@dataclass(frozen=True, slots=True)
class IonNode:
    """What the files are written from. ``folder`` is the node's folder as ION opens it (absolute)."""

    name: str
    eid: str  # its application endpoint, ipn:N.1 (app_eid)
    folder: str
    neighbours: tuple[IonNeighbour, ...]
    tcp_port: int = TCP_PORT  # where every node of its TCPCLv3 links listens (the backend's TCPCLv3 port)

    @property
    def node_nbr(self) -> int:
        n = parse_eid(self.eid).node_number
        if n is None:
            raise ValueError(f"{self.eid} is not an ipn EID")
        return n


def ionconfig(node: IonNode) -> str:
    return (
        "# ION's SDR in a file in this folder, so that a restart after kill -9 finds it\n"
        f"configFlags 7\nheapWords {HEAP_WORDS}\nwmSize {WM_SIZE}\npathName {node.folder}\n"
    )


def node_ionrc(node: IonNode, config_path: str) -> str:
    return f"1 {node.node_nbr} '{config_path}'\ns\n"


def contacts_ionrc(export: str, t0_unix_ns: int) -> str:
    """``export`` (export_ion's lines, +seconds from the run's start) set against t0 (Unix ns).

    ION reads whole seconds: the reference is t0 rounded up, so ION's view of a
    window starts and ends up to a second after hilnet opens and closes it.
    """
    t0 = datetime.fromtimestamp(math.ceil(t0_unix_ns / 1e9), UTC)
    return f"@ {t0:%Y/%m/%d-%H:%M:%S}\n{export}"


def bprc(node: IonNode) -> str:
    lines = [
        "1",
        "w 1",  # every BP watch token: what the driver turns into events
        "a scheme ipn 'ipnfw' 'ipnadminep'",
        f"a endpoint {node.eid} q",
        f"a endpoint {send_eid(node.eid)} x",  # sends only: what comes to it is discarded
    ]
    protocols = sorted({n.protocol for n in node.neighbours})
    for p in protocols:
        lines.append(f"a protocol {p}")
    if "tcp" in protocols:
        lines.append(f"a induct tcp 0.0.0.0:{node.tcp_port} tcpcli")
    if "ltp" in protocols:
        lines.append(f"a induct ltp {node.node_nbr} ltpcli")
    for n in node.neighbours:
        duct = f"{n.host}:{node.tcp_port}" if n.protocol == "tcp" else str(n.node_nbr)
        lines += [
            f"a outduct {n.protocol} {duct} {'tcpclo' if n.protocol == 'tcp' else 'ltpclo'}",
            f"a plan ipn:{n.node_nbr}.0",
            f"a planduct ipn:{n.node_nbr}.0 {n.protocol} {duct}",
        ]
    lines.append("s")
    return "\n".join(lines) + "\n"


def ltprc(node: IonNode) -> str | None:
    """The LTP spans, or None when no neighbour is reached over LTP."""
    spans = [n for n in node.neighbours if n.protocol == "ltp"]
    if not spans:
        return None
    lines = [f"1 {max(8, 8 * len(spans))}"]
    for n in spans:
        # 8 sessions each way, one frame a segment, blocks of up to 64 KiB or 1 s
        lines.append(f"a span {n.node_nbr} 8 8 {LTP_SEGMENT} 65536 1 'udplso {n.host}:{LTP_PORT}'")
    lines.append(f"s 'udplsi 0.0.0.0:{LTP_PORT}'")
    return "\n".join(lines) + "\n"
