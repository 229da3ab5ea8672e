"""Adding, rewriting and removing the blocks a security operation touches. No I/O."""

from __future__ import annotations

from dataclasses import replace

from hilnet.bundle.blocks import PAYLOAD_BLOCK_NUMBER, BlockFlag, Bundle, CanonicalBlock
from hilnet.bundle.crc import CrcType

__all__ = ["free_number", "inserted", "removed", "with_data"]


def free_number(bundle: Bundle) -> int:
    """The next block number no block of ``bundle`` uses."""
    return max([PAYLOAD_BLOCK_NUMBER, *(b.number for b in bundle.blocks)]) + 1


def inserted(
    bundle: Bundle, block_type: int, data: bytes, number: int | None, flags: BlockFlag, at: int
) -> tuple[Bundle, CanonicalBlock]:
    """``bundle`` with a new block at index ``at`` of its canonical blocks (0: first), and that block.

    The new block takes the payload's CRC type, so a CRC-less bundle stays CRC-less.
    """
    crc: CrcType = bundle.payload_block.crc_type
    block = CanonicalBlock(block_type, free_number(bundle) if number is None else number, data, flags, crc)
    at = max(0, min(at, len(bundle.blocks) - 1))  # never after the payload
    return replace(bundle, blocks=(*bundle.blocks[:at], block, *bundle.blocks[at:])), block


def with_data(bundle: Bundle, changes: dict[int, bytes]) -> Bundle:
    """``bundle`` with the data of the blocks numbered as the keys of ``changes`` replaced."""
    return replace(bundle, blocks=tuple(replace(b, data=changes.get(b.number, b.data)) for b in bundle.blocks))


def removed(bundle: Bundle, number: int) -> Bundle:
    """``bundle`` without the block numbered ``number``."""
    return replace(bundle, blocks=tuple(b for b in bundle.blocks if b.number != number))
