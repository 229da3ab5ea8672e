"""BPSec (RFC 9172) with the default security contexts of RFC 9173. No I/O.

- :mod:`~hilnet.bundle.bpsec.asb`: the Abstract Security Block codec
- :mod:`~hilnet.bundle.bpsec.scope`: IPPT and AAD (what the scope flags bind)
- :mod:`~hilnet.bundle.bpsec.bib_hmac`: BIB-HMAC-SHA2 integrity
- :mod:`~hilnet.bundle.bpsec.bcb_gcm`: BCB-AES-GCM confidentiality, with AES key wrap
- :mod:`~hilnet.bundle.bpsec.keys`: a node's keys, by security source
- :mod:`~hilnet.bundle.bpsec.policy`: what a source adds and an acceptor checks
"""

from hilnet.bundle.bpsec.asb import RawItem, SecurityBlock, decode_asb, encode_asb
from hilnet.bundle.bpsec.bcb_gcm import BCB_AES_GCM, AesVariant, add_bcb, decrypt_bcb
from hilnet.bundle.bpsec.bib_hmac import BIB_HMAC_SHA2, ShaVariant, add_bib, verify_bib
from hilnet.bundle.bpsec.keys import KeyRing, format_keys, parse_keys
from hilnet.bundle.bpsec.policy import CONFIDENTIALITY, INTEGRITY, Protection, accept, has_security_blocks, protect
from hilnet.bundle.bpsec.scope import ScopeFlag, aad, ippt

__all__ = [
    "BCB_AES_GCM",
    "BIB_HMAC_SHA2",
    "CONFIDENTIALITY",
    "INTEGRITY",
    "AesVariant",
    "KeyRing",
    "Protection",
    "accept",
    "format_keys",
    "has_security_blocks",
    "parse_keys",
    "protect",
    "RawItem",
    "ScopeFlag",
    "SecurityBlock",
    "ShaVariant",
    "aad",
    "add_bcb",
    "add_bib",
    "decode_asb",
    "decrypt_bcb",
    "encode_asb",
    "ippt",
    "verify_bib",
]
