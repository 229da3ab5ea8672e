"""A real agent holds no more than its memory budget for partial transfers, whoever sends them.

Four TCPCLv4 sessions each send a large transfer and never end it; on main the
agent kept every octet (4 x 248 MiB held 1 GB). Here the numbers are smaller
(4 x 12 MiB against a 16 MiB budget) and the agent's own figures and /proc say
how much it held.
"""

from __future__ import annotations

import socket

from hilnet.agent.cla import tcpcl_wire as w
from hilnet.agent.cla.tcpcl_messages import SegmentFlag, SessInit
from tests.agent.agent_procs import Procs, free_port

MiB = 1 << 20


def _vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_four_partial_transfers_are_held_within_the_budget(tmp_path):
    procs = Procs(tmp_path)
    clients: list[socket.socket] = []
    try:
        procs.start("b")
        port = free_port()
        procs.configure(
            "b", "ipn:2.0", [{"type": "tcpcl", "listen": f"127.0.0.1:{port}"}], limits={"memory_bytes": 16 * MiB}
        )
        rss_before = _vm_hwm_kb(procs.agents["b"].proc.pid)
        chunk = b"\x55" * (4 * MiB)
        for i in range(4):
            s = socket.create_connection(("127.0.0.1", port))
            clients.append(s)
            s.sendall(w.encode_contact_header() + w.encode_sess_init(SessInit(0, MiB, 1 << 30, f"ipn:{70 + i}.0")))
            s.sendall(w.encode_segment_header(SegmentFlag.START, 0, len(chunk)) + chunk)
            for _ in range(2):
                s.sendall(w.encode_segment_header(SegmentFlag.NONE, 0, len(chunk)) + chunk)
        procs.wait(lambda: procs.status("b")["limits"]["hits"].get("memory", 0) >= 1, 60, "the budget refused")
        limits = procs.status("b")["limits"]
        assert limits["memory_peak_bytes"] <= 16 * MiB, limits
        assert [e["limit"] for e in procs.of("b", "limit")] == ["memory"]
        grew_kb = _vm_hwm_kb(procs.agents["b"].proc.pid) - rss_before
        assert grew_kb < 48 * 1024, grew_kb  # 48 MiB offered; the budget and one read buffer per session held
    finally:
        for s in clients:
            s.close()
        procs.stop_all()
