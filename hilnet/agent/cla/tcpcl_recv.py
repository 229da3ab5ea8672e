"""The receiving half of a TCPCLv4 session: reassembly, acceptance or refusal, transfer-id memory.

Sans-I/O, driven by :class:`~hilnet.agent.cla.tcpcl_session.TcpclSession`,
which parses the segment headers (and checks them against our segment MRU)
and hands over the data octets that follow. Incoming data is acknowledged per
segment once buffered; the final XFER_ACK waits for :meth:`TransferReceiver.accept`,
i.e. for the agent's commit. Transfer ids seen in this session are remembered
(the last ``SessionConfig.remembered_ids`` of them) so a reused id is refused
("Completed"), not delivered twice. Sizes are in bytes.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from hilnet.agent.cla.budget import Holding
from hilnet.agent.cla.tcpcl_events import LimitReached, Outbox, SessionConfig, TransferReceived
from hilnet.agent.cla.tcpcl_messages import MsgType, RefuseReason, RejectReason, SegmentHeader, TransferExtType
from hilnet.agent.cla.tcpcl_wire import encode_xfer_ack, encode_xfer_refuse


class _Incoming:
    __slots__ = ("tid", "buf", "total", "refused")

    def __init__(self, tid: int, total: int | None):
        self.tid = tid
        self.buf = bytearray()
        self.total = total  # from the Transfer Length extension, if sent
        self.refused: int | None = None  # refusal reason once refused


class TransferReceiver:
    """The peer's transfers to us in one session; speaks through the session's ``out``."""

    def __init__(self, config: SessionConfig, out: Outbox, holding: Holding | None = None):
        self.config = config
        self._out = out
        self._rx: _Incoming | None = None
        self._seg: SegmentHeader | None = None
        self.seg_left = 0  # data octets of the current segment still to come
        self._commit: dict[int, tuple[int, int]] = {}  # tid -> (flags, length) of the final ack
        self._seen: OrderedDict[int, bool] = OrderedDict()  # tid -> delivered?
        self._hold = holding or Holding(config.budget)  # the partial transfer's bytes in the agent's budget
        self.segments_done = 0  # progress, for the partial-transfer timeout

    @property
    def partial(self) -> bool:
        """A transfer has begun arriving and has not ended."""
        return self._rx is not None and self._rx.refused is None

    @property
    def busy(self) -> bool:
        """A transfer is arriving or awaits the agent's commit."""
        return bool(self._commit or self._rx is not None)

    @property
    def awaiting_commit(self) -> bool:
        """A received bundle waits for accept() or refuse()."""
        return bool(self._commit)

    def on_segment(self, seg: SegmentHeader, ending: bool) -> None:
        """A segment header within our segment MRU; its ``seg.length`` data octets follow.

        ``ending``: our SESS_TERM went out, so a new transfer is refused.
        """
        self._seg = seg
        self.seg_left = seg.length
        self._start_segment(seg, ending)
        if not self.seg_left:
            self._segment_done()  # a zero-length segment has no data to wait for

    def segment_data(self, data: memoryview) -> int:
        """Octets after a segment header; takes at most ``seg_left`` of them and returns how many."""
        take = min(self.seg_left, len(data))
        rx = self._rx
        if rx is not None and rx.refused is None:
            rx.buf += data[:take]
        self.seg_left -= take
        if not self.seg_left:
            self._segment_done()
        return take

    def accept(self, tid: int) -> bool:
        """The agent committed transfer ``tid``: send its final XFER_ACK. False if none waited."""
        final = self._commit.pop(tid, None)
        if final is None:
            return False
        self._out.ctl.append(encode_xfer_ack(final[0], tid, final[1]))
        self._remember(tid, True)
        return True

    def refuse(self, tid: int, reason: RefuseReason) -> bool:
        """The agent did not take transfer ``tid``: send XFER_REFUSE. False if none waited."""
        if self._commit.pop(tid, None) is None:
            return False
        self._out.ctl.append(encode_xfer_refuse(reason, tid))
        return True

    def drop(self) -> None:
        """The session ended: a partial transfer is dropped, never delivered, and nothing is acked."""
        self._rx = None
        self._commit.clear()
        self._hold.release()

    # --- internals -----------------------------------------------------------

    def _start_segment(self, seg: SegmentHeader, ending: bool) -> None:
        rx = self._rx
        if seg.start:
            self._hold.release()  # whatever came before is dropped
            if rx is not None and rx.refused is None:
                self._out.violation(
                    "transfer_not_ended", f"transfer {rx.tid} restarted by {seg.transfer_id} before its END"
                )
            self._rx = rx = _Incoming(seg.transfer_id, None)
            refusal = self._check_start(seg, rx, ending)
            if refusal is not None:
                self._refuse(rx, refusal)
        elif rx is None or rx.tid != seg.transfer_id:
            if seg.transfer_id in self._seen and not self._seen[seg.transfer_id]:
                self._out.ctl.append(encode_xfer_refuse(RefuseReason.UNKNOWN, seg.transfer_id))  # still refused
            else:
                self._out.reject(RejectReason.MESSAGE_UNEXPECTED, MsgType.XFER_SEGMENT, "segment_without_start")
            self._rx = _Incoming(seg.transfer_id, None)
            self._rx.refused = RefuseReason.UNKNOWN  # swallow its data
            return
        if rx.refused is not None:
            if not seg.start:
                self._out.ctl.append(encode_xfer_refuse(rx.refused, rx.tid))  # RFC 9174 5.2.4: refuse again
            return
        size = len(rx.buf) + seg.length
        if rx.total is not None and size > rx.total:
            self._out.violation("transfer_longer_than_announced", f"transfer {rx.tid}: {size} > {rx.total}")
            self._refuse(rx, RefuseReason.NOT_ACCEPTABLE)
        elif size > self.config.transfer_mru:
            self._out.violation("transfer_mru_exceeded", f"transfer {rx.tid} passes {self.config.transfer_mru} bytes")
            self._refuse(rx, RefuseReason.NO_RESOURCES)
        elif not self._hold.grow(seg.length):  # octets that come, not lengths declared, take from the budget
            self._out.events.append(LimitReached("memory", f"transfer {rx.tid} at {size} bytes"))
            self._refuse(rx, RefuseReason.NO_RESOURCES)

    def _check_start(self, seg: SegmentHeader, rx: _Incoming, ending: bool) -> RefuseReason | None:
        if ending:
            return RefuseReason.SESSION_TERMINATING
        if seg.transfer_id in self._seen or seg.transfer_id in self._commit:
            self._out.violation("transfer_id_reused", f"transfer id {seg.transfer_id}")
            return RefuseReason.COMPLETED if self._seen.get(seg.transfer_id) else RefuseReason.NOT_ACCEPTABLE
        for item in seg.extensions:
            if item.type == TransferExtType.TRANSFER_LENGTH:
                if rx.total is not None or len(item.value) != 8:
                    self._out.violation("transfer_length_ext_invalid", f"transfer {seg.transfer_id}")
                    return RefuseReason.NOT_ACCEPTABLE
                (rx.total,) = struct.unpack("!Q", item.value)
                if rx.total > self.config.transfer_mru:
                    return RefuseReason.NO_RESOURCES
            elif item.critical:
                self._out.violation("transfer_ext_critical", f"critical transfer extension type {item.type}")
                return RefuseReason.EXTENSION_FAILURE
        return None

    def _segment_done(self) -> None:
        seg, rx = self._seg, self._rx
        self._seg = None
        self.segments_done += 1
        if seg is None or rx is None:
            return
        if rx.refused is not None:
            if seg.end:
                self._rx = None
            return
        if not seg.end:
            self._out.ctl.append(encode_xfer_ack(seg.flags, rx.tid, len(rx.buf)))
            return
        self._rx = None
        self._hold.release()  # handed over (or refused): the agent's commit owns the bytes now
        if rx.total is not None and len(rx.buf) != rx.total:
            self._out.violation("transfer_shorter_than_announced", f"transfer {rx.tid}: {len(rx.buf)} < {rx.total}")
            self._refuse(rx, RefuseReason.NOT_ACCEPTABLE)
            return
        self._commit[rx.tid] = (seg.flags, len(rx.buf))
        self._out.events.append(TransferReceived(rx.tid, bytes(rx.buf)))

    def _refuse(self, rx: _Incoming, reason: RefuseReason) -> None:
        rx.refused = reason
        rx.buf = bytearray()
        self._hold.release()
        if rx.tid not in self._seen:
            self._remember(rx.tid, False)
        self._out.ctl.append(encode_xfer_refuse(reason, rx.tid))

    def _remember(self, tid: int, delivered: bool) -> None:
        self._seen[tid] = delivered
        while len(self._seen) > self.config.remembered_ids:
            self._seen.popitem(last=False)
