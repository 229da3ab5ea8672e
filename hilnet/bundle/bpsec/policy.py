"""What a bundle's source adds and what its destination checks: hilnet's BPSec policy. No I/O.

A source asked for *integrity* adds one BIB (BIB-HMAC-SHA2) over the
payload; asked for *confidentiality*, one BCB (BCB-AES-GCM) over the payload
and, when there is one, the BIB over it (RFC 9172 section 3.9: a BIB whose
target is encrypted is encrypted too). Both use the full scope (primary
block, target and security headers) and the source node as security source.
The BCB's content-encryption key is fresh per bundle and travels wrapped
under the source's confidentiality key.

The destination is the security acceptor of every BIB and BCB in a bundle
for it: BCBs first (decrypting may reveal BIBs), then BIBs; each is removed
once processed. Relays are neither: they forward security blocks unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hilnet.bundle.blocks import PAYLOAD_BLOCK_NUMBER, BlockType, Bundle, CanonicalBlock, PrimaryBlock
from hilnet.bundle.bpsec.asb import decode_asb
from hilnet.bundle.bpsec.bcb_gcm import AesVariant, add_bcb, decrypt_bcb
from hilnet.bundle.bpsec.bib_hmac import ShaVariant, add_bib, verify_bib
from hilnet.bundle.bpsec.edit import free_number, removed
from hilnet.bundle.bpsec.keys import KeyRing
from hilnet.bundle.bpsec.scope import ScopeFlag
from hilnet.bundle.codec import encode_bundle
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import Eid

__all__ = [
    "CONFIDENTIALITY",
    "INTEGRITY",
    "IV_SIZE",
    "Protection",
    "accept",
    "has_security_blocks",
    "overhead_bytes",
    "protect",
]

#: the names a scenario and ``hilnet bundle make`` use
INTEGRITY = {"hmac-sha256": ShaVariant.HMAC_256, "hmac-sha384": ShaVariant.HMAC_384, "hmac-sha512": ShaVariant.HMAC_512}
CONFIDENTIALITY = {"aes128-gcm": AesVariant.A128GCM, "aes256-gcm": AesVariant.A256GCM}
#: bytes of a BCB's initialization vector (RFC 9173 4.3.1 recommends 12)
IV_SIZE = 12
_SECURITY_TYPES = (BlockType.BLOCK_INTEGRITY, BlockType.BLOCK_CONFIDENTIALITY)


@dataclass(frozen=True, slots=True)
class Protection:
    """The security services a bundle's source adds; None: not that one."""

    integrity: ShaVariant | None = None
    confidentiality: AesVariant | None = None

    @classmethod
    def named(cls, integrity: str | None, confidentiality: str | None) -> Protection:
        """From the names of :data:`INTEGRITY` and :data:`CONFIDENTIALITY`; ValueError names the choices."""
        if integrity is not None and integrity not in INTEGRITY:
            raise ValueError(f"integrity {integrity!r} is not one of {', '.join(INTEGRITY)}")
        if confidentiality is not None and confidentiality not in CONFIDENTIALITY:
            raise ValueError(f"confidentiality {confidentiality!r} is not one of {', '.join(CONFIDENTIALITY)}")
        return cls(
            INTEGRITY[integrity] if integrity else None, CONFIDENTIALITY[confidentiality] if confidentiality else None
        )

    @property
    def names(self) -> tuple[str | None, str | None]:
        """``(integrity, confidentiality)`` names, None where absent."""
        i = next((k for k, v in INTEGRITY.items() if v == self.integrity), None)
        c = next((k for k, v in CONFIDENTIALITY.items() if v == self.confidentiality), None)
        return i, c

    def __bool__(self) -> bool:
        return self.integrity is not None or self.confidentiality is not None


def protect(bundle: Bundle, keys: KeyRing, protection: Protection, random: Callable[[int], bytes]) -> Bundle:
    """``bundle`` with the BIB and BCB ``protection`` asks for, made with its source node's keys.

    ``random(n)`` gives ``n`` fresh random bytes (the IV and the content key).
    Raises :class:`~hilnet.errors.SecurityError` (``no-key``) without a key.
    """
    source = bundle.primary.source.node_id
    targets: tuple[int, ...] = (PAYLOAD_BLOCK_NUMBER,)
    if protection.integrity is not None:
        key = keys.key("integrity", source)
        bib = free_number(bundle)
        bundle = add_bib(bundle, targets, source, key, variant=protection.integrity, scope=ScopeFlag.ALL, number=bib)
        targets = (bib, PAYLOAD_BLOCK_NUMBER)
    if protection.confidentiality is not None:
        kek = keys.key("confidentiality", source)
        variant = protection.confidentiality
        cek, iv = random(variant.key_size), random(IV_SIZE)
        bundle = add_bcb(bundle, targets, source, cek, iv, variant=variant, scope=ScopeFlag.ALL, kek=kek)
    return bundle


def has_security_blocks(bundle: Bundle) -> bool:
    """Whether ``bundle`` carries a BIB or a BCB."""
    return any(b.block_type in _SECURITY_TYPES for b in bundle.blocks)


def accept(bundle: Bundle, keys: KeyRing) -> Bundle:
    """``bundle`` decrypted and verified, its BCBs and BIBs removed (the destination's duty).

    Raises :class:`~hilnet.errors.SecurityError` for a block that does not
    verify or decrypt, or whose source has no key here;
    :class:`~hilnet.errors.BundleDecodeError` for a malformed one.
    """
    while True:
        bcb = bundle.block(BlockType.BLOCK_CONFIDENTIALITY)
        if bcb is None:
            break
        bundle = decrypt_bcb(bundle, bcb, keys.key("confidentiality", decode_asb(bcb.data).source))
    while True:
        bib = bundle.block(BlockType.BLOCK_INTEGRITY)
        if bib is None:
            return bundle
        verify_bib(bundle, bib, keys.key("integrity", decode_asb(bib.data).source))
        bundle = removed(bundle, bib.number)


def overhead_bytes(protection: Protection, source: Eid, crc_type: CrcType = CrcType.CRC32C) -> int:
    """Bytes the blocks of ``protection`` add to a bundle from ``source`` whose blocks carry ``crc_type``.

    Measured, not estimated: the difference a real :func:`protect` makes to a
    sample bundle (the ciphertext is as long as the plaintext, so the payload
    size does not matter). For the plan's capacity figures.
    """
    if not protection:
        return 0
    payload = CanonicalBlock(BlockType.PAYLOAD, PAYLOAD_BLOCK_NUMBER, bytes(64), crc_type=crc_type)
    sample = Bundle(PrimaryBlock(source, source, source, 1, 0, 1000, crc_type=crc_type), (payload,))
    zero = KeyRing({str(source.node_id): bytes(32)}, {str(source.node_id): bytes(32)})
    return len(encode_bundle(protect(sample, zero, protection, bytes))) - len(encode_bundle(sample))
