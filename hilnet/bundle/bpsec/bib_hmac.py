"""BIB-HMAC-SHA2, the default integrity context (RFC 9173 section 3). No I/O.

Parameters: 1 SHA variant (5 HMAC 256/256, 6 HMAC 384/384 (the default),
7 HMAC 512/512), 2 wrapped key (the HMAC key under AES key wrap, RFC 3394),
3 integrity scope flags (default 7). Result 1 is the HMAC over the target's
IPPT (:func:`hilnet.bundle.bpsec.scope.ippt`).

:func:`add_bib` writes the parameters it was given explicitly, in id order,
as the examples of Appendix A do; :func:`verify_bib` reads defaults for any
that are absent.
"""

from __future__ import annotations

import hmac
from enum import IntEnum

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle, CanonicalBlock
from hilnet.bundle.bpsec.asb import Pairs, SecurityBlock, decode_asb, encode_asb
from hilnet.bundle.bpsec.edit import inserted, with_data
from hilnet.bundle.bpsec.scope import ScopeFlag, ippt
from hilnet.bundle.eid import Eid
from hilnet.errors import BundleEncodeError, SecurityError

__all__ = ["BIB_HMAC_SHA2", "ShaVariant", "add_bib", "verify_bib"]

#: security context id (RFC 9173 section 3.1)
BIB_HMAC_SHA2 = 1
PARAM_SHA_VARIANT = 1
PARAM_WRAPPED_KEY = 2
PARAM_SCOPE = 3
RESULT_HMAC = 1


class ShaVariant(IntEnum):
    """SHA variant parameter values (COSE algorithm ids)."""

    HMAC_256 = 5
    HMAC_384 = 6
    HMAC_512 = 7

    @property
    def digest(self) -> str:
        return {5: "sha256", 6: "sha384", 7: "sha512"}[self.value]


def _macs(
    bundle: Bundle, targets: tuple[int, ...], bib: CanonicalBlock, key: bytes, v: ShaVariant, scope: int
) -> list[bytes]:
    return [hmac.digest(key, ippt(bundle, t, bib, scope), v.digest) for t in targets]


def add_bib(
    bundle: Bundle,
    targets: tuple[int, ...],
    source: Eid,
    key: bytes,
    *,
    variant: ShaVariant = ShaVariant.HMAC_384,
    scope: ScopeFlag = ScopeFlag.ALL,
    kek: bytes | None = None,
    number: int | None = None,
    flags: BlockFlag = BlockFlag.NONE,
    at: int = 0,
) -> Bundle:
    """``bundle`` with a BIB from ``source`` over block numbers ``targets`` (0: the primary block).

    ``key`` is the HMAC key; with ``kek`` it travels wrapped under ``kek``
    (parameter 2). ``number`` None takes the next free block number; the BIB
    goes at index ``at`` of the canonical blocks.
    """
    if not targets:
        raise BundleEncodeError("a BIB needs at least one target")
    params: list[tuple[int, int | bytes]] = [(PARAM_SHA_VARIANT, int(variant))]
    if kek is not None:
        params.append((PARAM_WRAPPED_KEY, aes_key_wrap(kek, key)))
    params.append((PARAM_SCOPE, int(scope)))
    out, bib = inserted(bundle, BlockType.BLOCK_INTEGRITY, b"", number, flags, at)
    # the IPPT holds the BIB's header, never its data: sign first, then write the results in
    macs = _macs(out, targets, bib, key, variant, scope)
    results: tuple[Pairs, ...] = tuple(((RESULT_HMAC, m),) for m in macs)
    asb = SecurityBlock(targets, BIB_HMAC_SHA2, source, tuple(params), results)
    return with_data(out, {bib.number: encode_asb(asb)})


def _key(asb: SecurityBlock, key: bytes, where: str) -> bytes:
    wrapped = asb.parameter(PARAM_WRAPPED_KEY)
    if wrapped is None:
        return key
    if not isinstance(wrapped, bytes):
        raise SecurityError("bad-parameter", f"{where}: the wrapped key must be a byte string")
    try:
        return aes_key_unwrap(key, wrapped)
    except (InvalidUnwrap, ValueError):
        raise SecurityError(
            "key-unwrap-failed", f"{where}: the wrapped key does not unwrap with the key for {asb.source}"
        ) from None


def _variant_and_scope(asb: SecurityBlock, where: str) -> tuple[ShaVariant, int]:
    v = asb.parameter(PARAM_SHA_VARIANT)
    scope = asb.parameter(PARAM_SCOPE)
    try:
        variant = ShaVariant(6 if v is None else v if isinstance(v, int) else -1)
    except ValueError:
        raise SecurityError("bad-parameter", f"{where}: SHA variant {v!r} is not 5, 6 or 7") from None
    if scope is None:
        scope = int(ScopeFlag.ALL)
    if not isinstance(scope, int) or scope < 0:
        raise SecurityError("bad-parameter", f"{where}: integrity scope flags {scope!r} are not an unsigned integer")
    return variant, scope


def verify_bib(bundle: Bundle, bib: CanonicalBlock, key: bytes) -> SecurityBlock:
    """Check every result of ``bib`` (a block of ``bundle``) with ``key``; returns its ASB.

    Raises :class:`~hilnet.errors.SecurityError` (reason ``bib-mismatch``,
    ``bad-parameter``...) when a target does not verify; a malformed ASB
    raises :class:`~hilnet.errors.BundleDecodeError`.
    """
    asb = decode_asb(bib.data)
    where = f"BIB {bib.number} from {asb.source}"
    if asb.context_id != BIB_HMAC_SHA2:
        raise SecurityError("unknown-context", f"{where}: security context {asb.context_id} is not BIB-HMAC-SHA2 (1)")
    variant, scope = _variant_and_scope(asb, where)
    hkey = _key(asb, key, where)
    for target, result in zip(asb.targets, asb.results, strict=True):
        want = dict(result).get(RESULT_HMAC)
        if not isinstance(want, bytes):
            raise SecurityError("bad-result", f"{where}: no HMAC result for block {target}")
        got = hmac.digest(hkey, ippt(bundle, target, bib, scope), variant.digest)
        if not hmac.compare_digest(got, want):
            raise SecurityError("bib-mismatch", f"{where}: the HMAC of block {target} does not match")
    return asb
