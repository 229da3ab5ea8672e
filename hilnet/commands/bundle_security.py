"""BPSec in ``hilnet bundle``: what ``show`` says of a BIB or BCB, and what ``make --sign/--encrypt`` adds."""

from __future__ import annotations

import os

from hilnet.agent.security import load_keyring
from hilnet.bundle.blocks import BlockType, Bundle, CanonicalBlock
from hilnet.bundle.bpsec import (
    BCB_AES_GCM,
    BIB_HMAC_SHA2,
    KeyRing,
    Protection,
    RawItem,
    accept,
    decode_asb,
    has_security_blocks,
    protect,
)
from hilnet.errors import BundleDecodeError, InputError

_CONTEXTS = {BIB_HMAC_SHA2: "BIB-HMAC-SHA2", BCB_AES_GCM: "BCB-AES-GCM"}
_PARAMETERS = {
    BIB_HMAC_SHA2: {1: "sha_variant", 2: "wrapped_key", 3: "scope_flags"},
    BCB_AES_GCM: {1: "iv", 2: "aes_variant", 3: "wrapped_key", 4: "scope_flags"},
}
_RESULTS = {BIB_HMAC_SHA2: {1: "hmac"}, BCB_AES_GCM: {1: "tag"}}
SECURITY_TYPES = (BlockType.BLOCK_INTEGRITY, BlockType.BLOCK_CONFIDENTIALITY)


def _value(v: int | bytes | RawItem) -> int | str:
    if isinstance(v, RawItem):
        return "cbor:" + v.encoded.hex()
    return v.hex() if isinstance(v, bytes) else v


def security_content(bundle: Bundle, b: CanonicalBlock) -> dict:
    """The ASB of BIB or BCB ``b`` for ``show``; a block a BCB encrypted says which."""
    sealers = [
        c.number
        for c in bundle.blocks
        if c.block_type == BlockType.BLOCK_CONFIDENTIALITY and c is not b and _targets(c, b.number)
    ]
    if sealers:
        return {"encrypted_by": sealers[0]}
    try:
        asb = decode_asb(b.data)
    except BundleDecodeError as e:
        return {"security_error": str(e)}
    params = _PARAMETERS.get(asb.context_id, {})
    results = _RESULTS.get(asb.context_id, {})
    return {
        "security": {
            "context": _CONTEXTS.get(asb.context_id, f"context {asb.context_id}"),
            "source": str(asb.source),
            "targets": list(asb.targets),
            "parameters": {params.get(k, str(k)): _value(v) for k, v in asb.parameters or ()},
            "results": [{results.get(k, str(k)): _value(v) for k, v in r} for r in asb.results],
        }
    }


def _targets(bcb: CanonicalBlock, number: int) -> bool:
    try:
        return number in decode_asb(bcb.data).targets
    except BundleDecodeError:
        return False


def secured(bundle: Bundle, sign: str | None, encrypt: str | None) -> Bundle:
    """``bundle`` with a BIB (HMAC-SHA384) made with ``sign``'s keys and a BCB (AES-256-GCM) with ``encrypt``'s."""
    if sign is None and encrypt is None:
        return bundle
    ring_sign = load_keyring(sign) if sign else KeyRing()
    ring_encrypt = load_keyring(encrypt) if encrypt else KeyRing()
    keys = KeyRing(ring_sign.integrity, ring_encrypt.confidentiality)
    protection = Protection.named("hmac-sha384" if sign else None, "aes256-gcm" if encrypt else None)
    return protect(bundle, keys, protection, os.urandom)


def accepted_here(bundle: Bundle, keys: str) -> Bundle:
    """``bundle`` decrypted and verified with the key file ``keys`` (SecurityError if it fails)."""
    if not has_security_blocks(bundle):
        raise InputError("--keys: the bundle has no BIB or BCB to check")
    return accept(bundle, load_keyring(keys))
