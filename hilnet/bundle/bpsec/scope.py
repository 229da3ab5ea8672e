"""What a security operation binds besides its target's data (RFC 9173 sections 3.7 and 4.7). No I/O.

Both default contexts take *scope flags*: bit 0 adds the primary block,
bit 1 the target block's header, bit 2 the security block's header, each
after the flags themselves (a CBOR unsigned integer). A block header is its
type code, block number and processing flags, each a CBOR unsigned integer.

- BIB-HMAC-SHA2 signs the *Integrity-Protected Plaintext* (IPPT): that
  prefix, then the target's content as a CBOR byte string. The content of a
  canonical block is its block-type-specific data; of the primary block, its
  whole encoding. The primary block has no header, and including it twice
  adds nothing: for target 0 bits 0 and 1 are ignored.
- BCB-AES-GCM authenticates the same prefix as its Additional
  Authenticated Data (AAD); a BCB never targets the primary block.
"""

from __future__ import annotations

from enum import IntFlag

from hilnet.bundle import cbor
from hilnet.bundle.blocks import Bundle, CanonicalBlock
from hilnet.bundle.codec import encode_primary_block
from hilnet.errors import SecurityError

__all__ = ["ScopeFlag", "aad", "block_header", "ippt", "target_block"]


class ScopeFlag(IntFlag):
    """Integrity scope (BIB) and AAD scope (BCB) flags; RFC 9173's default is all three."""

    NONE = 0
    PRIMARY_BLOCK = 0x01
    TARGET_HEADER = 0x02
    SECURITY_HEADER = 0x04
    ALL = 0x07


def block_header(b: CanonicalBlock) -> bytes:
    """Type code, block number and flags of ``b``, each a CBOR unsigned integer."""
    return cbor.uint(int(b.block_type)) + cbor.uint(b.number) + cbor.uint(int(b.flags))


def target_block(bundle: Bundle, number: int, what: str) -> CanonicalBlock:
    """The canonical block numbered ``number``; SecurityError if the bundle has none."""
    for b in bundle.blocks:
        if b.number == number:
            return b
    raise SecurityError("missing-target", f"{what} targets block {number}, which the bundle does not have")


def _prefix(bundle: Bundle, target: CanonicalBlock | None, security: CanonicalBlock, scope: int) -> bytes:
    parts = [cbor.uint(scope)]
    if scope & ScopeFlag.PRIMARY_BLOCK and target is not None:
        parts.append(encode_primary_block(bundle.primary))
    if scope & ScopeFlag.TARGET_HEADER and target is not None:
        parts.append(block_header(target))
    if scope & ScopeFlag.SECURITY_HEADER:
        parts.append(block_header(security))
    return b"".join(parts)


def ippt(bundle: Bundle, target: int, security: CanonicalBlock, scope: int) -> bytes:
    """The IPPT of block number ``target`` (0: the primary block) under BIB ``security``."""
    if target == 0:
        return _prefix(bundle, None, security, scope) + cbor.byte_string(encode_primary_block(bundle.primary))
    block = target_block(bundle, target, f"BIB {security.number}")
    return _prefix(bundle, block, security, scope) + cbor.byte_string(block.data)


def aad(bundle: Bundle, target: CanonicalBlock, security: CanonicalBlock, scope: int) -> bytes:
    """The AAD of encrypting ``target`` under BCB ``security``."""
    return _prefix(bundle, target, security, scope)
