"""BCB-AES-GCM, the default confidentiality context (RFC 9173 section 4). No I/O.

Parameters: 1 initialization vector (12 bytes recommended), 2 AES variant
(1 A128GCM, 3 A256GCM (the default)), 3 wrapped key (the content-encryption
key under AES key wrap, RFC 3394), 4 AAD scope flags (default 7). Result 1
is each target's 16-byte authentication tag; the ciphertext replaces the
target's block-type-specific data and has its length.

The caller brings the IV and the content-encryption key (``os.urandom``
in the agent, the RFC's fixed values in the tests), so this module stays
deterministic.
"""

from __future__ import annotations

from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle, CanonicalBlock
from hilnet.bundle.bpsec.asb import SecurityBlock, decode_asb, encode_asb
from hilnet.bundle.bpsec.edit import inserted, removed, with_data
from hilnet.bundle.bpsec.scope import ScopeFlag, aad, target_block
from hilnet.bundle.eid import Eid
from hilnet.errors import BundleEncodeError, SecurityError

__all__ = ["BCB_AES_GCM", "AesVariant", "add_bcb", "decrypt_bcb"]

#: security context id (RFC 9173 section 4.1)
BCB_AES_GCM = 2
PARAM_IV = 1
PARAM_AES_VARIANT = 2
PARAM_WRAPPED_KEY = 3
PARAM_SCOPE = 4
RESULT_TAG = 1
TAG_SIZE = 16
#: IV lengths AES-GCM takes, bytes (RFC 9173 recommends 12)
IV_SIZES = range(8, 129)


class AesVariant(IntEnum):
    """AES variant parameter values (COSE algorithm ids); the key is 16 or 32 bytes."""

    A128GCM = 1
    A256GCM = 3

    @property
    def key_size(self) -> int:
        return 16 if self is AesVariant.A128GCM else 32


def add_bcb(
    bundle: Bundle,
    targets: tuple[int, ...],
    source: Eid,
    key: bytes,
    iv: bytes,
    *,
    variant: AesVariant = AesVariant.A256GCM,
    scope: ScopeFlag = ScopeFlag.ALL,
    kek: bytes | None = None,
    number: int | None = None,
    flags: BlockFlag = BlockFlag.REPLICATE_IN_EVERY_FRAGMENT,
    at: int = 0,
) -> Bundle:
    """``bundle`` with the blocks numbered ``targets`` encrypted under a new BCB from ``source``.

    ``key`` is the content-encryption key (``variant.key_size`` bytes); with
    ``kek`` it travels wrapped under ``kek`` (parameter 3), else the
    receiver must hold it. The BCB's flags default to "replicate in every
    fragment", which RFC 9172 requires of a BCB over the payload.
    """
    if not targets or 0 in targets:
        raise BundleEncodeError("a BCB needs at least one target and never targets the primary block")
    if len(key) != variant.key_size:
        raise BundleEncodeError(f"{variant.name} needs a {variant.key_size}-byte key, got {len(key)}")
    if len(iv) not in IV_SIZES:
        raise BundleEncodeError(f"an AES-GCM IV has 8 to 128 bytes, got {len(iv)}")
    params: list[tuple[int, int | bytes]] = [(PARAM_IV, iv), (PARAM_AES_VARIANT, int(variant))]
    if kek is not None:
        params.append((PARAM_WRAPPED_KEY, aes_key_wrap(kek, key)))
    params.append((PARAM_SCOPE, int(scope)))
    out, bcb = inserted(bundle, BlockType.BLOCK_CONFIDENTIALITY, b"", number, flags, at)
    gcm = AESGCM(key)
    changes: dict[int, bytes] = {}
    results = []
    for t in targets:
        block = target_block(out, t, f"BCB {bcb.number}")
        sealed = gcm.encrypt(iv, block.data, aad(out, block, bcb, scope))
        changes[t] = sealed[:-TAG_SIZE]
        results.append(((RESULT_TAG, sealed[-TAG_SIZE:]),))
    asb = SecurityBlock(targets, BCB_AES_GCM, source, tuple(params), tuple(results))
    changes[bcb.number] = encode_asb(asb)
    return with_data(out, changes)


def _bytes_param(asb: SecurityBlock, pid: int, what: str, where: str) -> bytes | None:
    v = asb.parameter(pid)
    if v is not None and not isinstance(v, bytes):
        raise SecurityError("bad-parameter", f"{where}: the {what} must be a byte string")
    return v


def _content_key(asb: SecurityBlock, key: bytes, variant: AesVariant, where: str) -> bytes:
    wrapped = _bytes_param(asb, PARAM_WRAPPED_KEY, "wrapped key", where)
    if wrapped is not None:
        try:
            key = aes_key_unwrap(key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise SecurityError(
                "key-unwrap-failed", f"{where}: the wrapped key does not unwrap with the key for {asb.source}"
            ) from None
    if len(key) != variant.key_size:
        raise SecurityError("bad-key", f"{where}: {variant.name} needs a {variant.key_size}-byte key, has {len(key)}")
    return key


def _parameters(asb: SecurityBlock, where: str) -> tuple[bytes, AesVariant, int]:
    iv = _bytes_param(asb, PARAM_IV, "initialization vector", where)
    if iv is None or len(iv) not in IV_SIZES:
        raise SecurityError("bad-parameter", f"{where}: the initialization vector must have 8 to 128 bytes")
    v = asb.parameter(PARAM_AES_VARIANT)
    try:
        variant = AesVariant(3 if v is None else v if isinstance(v, int) else -1)
    except ValueError:
        raise SecurityError("bad-parameter", f"{where}: AES variant {v!r} is not 1 or 3") from None
    scope = asb.parameter(PARAM_SCOPE)
    if scope is None:
        scope = int(ScopeFlag.ALL)
    if not isinstance(scope, int) or scope < 0:
        raise SecurityError("bad-parameter", f"{where}: AAD scope flags {scope!r} are not an unsigned integer")
    return iv, variant, scope


def decrypt_bcb(bundle: Bundle, bcb: CanonicalBlock, key: bytes) -> Bundle:
    """``bundle`` with the targets of ``bcb`` decrypted and ``bcb`` removed (the acceptor's duty).

    ``key`` is the key-encryption key when the BCB carries a wrapped key,
    else the content-encryption key. Raises
    :class:`~hilnet.errors.SecurityError` (``bcb-tag-mismatch`` for a
    wrong key or altered data).
    """
    asb = decode_asb(bcb.data)
    where = f"BCB {bcb.number} from {asb.source}"
    if asb.context_id != BCB_AES_GCM:
        raise SecurityError("unknown-context", f"{where}: security context {asb.context_id} is not BCB-AES-GCM (2)")
    iv, variant, scope = _parameters(asb, where)
    gcm = AESGCM(_content_key(asb, key, variant, where))
    changes: dict[int, bytes] = {}
    for t, result in zip(asb.targets, asb.results, strict=True):
        tag = dict(result).get(RESULT_TAG)
        if not isinstance(tag, bytes) or len(tag) != TAG_SIZE:
            raise SecurityError("bad-result", f"{where}: no 16-byte authentication tag for block {t}")
        block = target_block(bundle, t, where)
        try:
            changes[t] = gcm.decrypt(iv, block.data + tag, aad(bundle, block, bcb, scope))
        except InvalidTag:
            raise SecurityError(
                "bcb-tag-mismatch", f"{where}: block {t} does not decrypt (wrong key or altered)"
            ) from None
    return removed(with_data(bundle, changes), bcb.number)
