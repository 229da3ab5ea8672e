"""BPv7 (RFC 9171): endpoint ids, CRCs, blocks and their rules, the codec, fragments and admin records. No I/O.

The names most callers need are re-exported here::

    from hilnet.bundle import make_bundle, encode_bundle, decode_bundle, parse_eid
"""

from hilnet.bundle.admin import ReasonCode, StatusItem, StatusReport, decode_admin_record, encode_status_report
from hilnet.bundle.blocks import (
    BlockFlag,
    BlockType,
    Bundle,
    BundleFlag,
    BundleId,
    CanonicalBlock,
    HopCount,
    PrimaryBlock,
    bundle_age_ms,
    hop_count,
    previous_node,
    set_bundle_age,
    set_hop_count,
    set_previous_node,
)
from hilnet.bundle.codec import DEFAULT_MAX_SIZE, decode_bundle, encode_bundle
from hilnet.bundle.cos import ClassOfService, Priority, class_of_service, set_class_of_service
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import NULL_EID, Eid, parse_eid
from hilnet.bundle.fragment import fragment, reassemble
from hilnet.bundle.make import make_bundle

__all__ = [
    "BlockFlag",
    "BlockType",
    "Bundle",
    "BundleFlag",
    "BundleId",
    "CanonicalBlock",
    "ClassOfService",
    "CrcType",
    "DEFAULT_MAX_SIZE",
    "Eid",
    "HopCount",
    "NULL_EID",
    "PrimaryBlock",
    "Priority",
    "ReasonCode",
    "StatusItem",
    "StatusReport",
    "bundle_age_ms",
    "class_of_service",
    "decode_admin_record",
    "decode_bundle",
    "encode_bundle",
    "encode_status_report",
    "fragment",
    "hop_count",
    "make_bundle",
    "parse_eid",
    "previous_node",
    "reassemble",
    "set_bundle_age",
    "set_class_of_service",
    "set_hop_count",
    "set_previous_node",
]
