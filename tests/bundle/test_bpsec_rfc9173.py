"""RFC 9173 Appendix A, byte for byte: each example built by hilnet.bundle.bpsec and checked
against the RFC's hex, then accepted back (decrypted, verified) to the original bundle.

The hex below is copied from the RFC (figures of A.1.4, A.2.3.1, A.2.4, A.3.5,
A.4.3.1, A.4.4.1 and A.4.5); keys, IVs and the content-encryption key are
the RFC's, so nothing here is random.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hilnet.bundle.blocks import BlockFlag, BlockType, Bundle, CanonicalBlock, PrimaryBlock
from hilnet.bundle.bpsec import (
    AesVariant,
    ScopeFlag,
    ShaVariant,
    add_bcb,
    add_bib,
    decode_asb,
    decrypt_bcb,
    encode_asb,
    ippt,
    verify_bib,
)
from hilnet.bundle.codec import decode_bundle, encode_block, encode_bundle, encode_primary_block
from hilnet.bundle.crc import CrcType
from hilnet.bundle.eid import parse_eid
from hilnet.errors import BundleDecodeError, SecurityError


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# A.1.1: ipn:2.1 -> ipn:1.2, creation time 0, sequence 40, lifetime 1,000,000 ms, no CRCs
ORIGINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f424085010100
    005823526561647920746f2067656e657261746520612033322d6279746520706179
    6c6f6164ff"""
)
PAYLOAD = b"Ready to generate a 32-byte payload"
HMAC_KEY = h("1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b")
CEK_128 = h("71776572747975696f70617364666768")
KEK = h("6162636465666768696a6b6c6d6e6f70")
IV = h("5477656c7665313231323132")
SRC = parse_eid("ipn:2.1")

A1_FINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f4240850b0200
    005856810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a
    8554368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2
    f1a73e303dcd4b6ccece003e95e8164dcc89a156e185010100005823526561647920
    746f2067656e657261746520612033322d62797465207061796c6f6164ff"""
)
A2_FINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f4240850c0201
    0058508101020182028202018482014c5477656c7665313231323132820201820358
    1869c411276fecddc4780df42c8a2af89296fabf34d7fae7008204008181820150ef
    a4b5ac0108e3816c5606479801bc04850101000058233a09c1e63fe23a7f66a59c73
    03837241e070b02619fc59c5214a22f08cd70795e73e9aff"""
)
A3_ORIGINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f424085070200
    004319012c85010100005823526561647920746f2067656e65726174652061203332
    2d62797465207061796c6f6164ff"""
)
A3_FINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f4240850b0300
    00585c8200020101820282030082820105820300828182015820cac6ce8e4c5dae57
    988b757e49a6dd1431dc04763541b2845098265bc817241b81820158203ed614c0d9
    7f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596850c0401005834
    8101020182028202018382014c5477656c7665313231323132820201820400818182
    0150efa4b5ac0108e3816c5606479801bc0485070200004319012c85010100005823
    3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e
    9aff"""
)
A4_IPPT = h(
    """07880700008202820102820282020182
    02820201820018281a000f4240010100
    0b03005823526561647920746f206765
    6e657261746520612033322d62797465
    207061796c6f6164"""
)
A4_FINAL = h(
    """9f88070000820282010282028202018202820201820018281a000f4240850b0300
    005846438ed6208eb1c1ffb94d952175167df0902902064a2983910c4fb2340790bf
    420a7d1921d5bf7c4721e02ab87a93ab1e0b75cf62e4948727c8b5dae46ed2af0543
    9b88029191850c0201005849820301020182028202018382014c5477656c76653132
    313231328202038204078281820150220ffc45c8a901999ecc60991dd78b29818201
    50d2c51cb2481792dae8b21d848cede99b8501010000582390eab6457593379298a8
    724e16e61f837488e127212b59ac91f8a86287b7d07630a122ff"""
)


def original() -> Bundle:
    primary = PrimaryBlock(
        destination=parse_eid("ipn:1.2"),
        source=SRC,
        report_to=SRC,
        creation_ms=0,
        sequence=40,
        lifetime_ms=1_000_000,
        crc_type=CrcType.NONE,
    )
    # creation time 0 needs a bundle age block by RFC 9171, which A.1, A.2 and A.4 leave out:
    # build the model directly (the decoder is strict about that rule, see below)
    return Bundle(primary, (CanonicalBlock(BlockType.PAYLOAD, 1, PAYLOAD, crc_type=CrcType.NONE),))


def raw(bundle: Bundle) -> bytes:
    """The codec's encoding of each block, without the bundle-level rule the RFC's examples skip.

    (Creation time 0 needs a Bundle Age block, RFC 9171 4.2.7; A.1, A.2 and A.4 have none.)
    """
    return b"\x9f" + encode_primary_block(bundle.primary) + b"".join(encode_block(b) for b in bundle.blocks) + b"\xff"


def test_the_original_bundle_is_the_rfcs():
    assert raw(original()) == ORIGINAL
    with pytest.raises(BundleDecodeError, match="bundle age"):
        decode_bundle(ORIGINAL)  # RFC 9171 4.2.7: creation time 0 needs a bundle age block


def test_a1_simple_integrity():
    signed = add_bib(original(), (1,), SRC, HMAC_KEY, variant=ShaVariant.HMAC_512, scope=ScopeFlag.NONE)
    assert raw(signed) == A1_FINAL
    assert ippt(signed, 1, signed.blocks[0], 0) == h("005823") + PAYLOAD
    asb = verify_bib(signed, signed.blocks[0], HMAC_KEY)
    assert asb.source == SRC and asb.targets == (1,)
    assert encode_asb(decode_asb(signed.blocks[0].data)) == signed.blocks[0].data


def test_a2_simple_confidentiality_with_key_wrap():
    sealed = add_bcb(original(), (1,), SRC, CEK_128, IV, variant=AesVariant.A128GCM, scope=ScopeFlag.NONE, kek=KEK)
    assert raw(sealed) == A2_FINAL
    assert sealed.payload == h("3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e9a")
    opened = decrypt_bcb(sealed, sealed.blocks[0], KEK)
    assert opened == original()


def test_a3_security_blocks_from_multiple_sources():
    aged = Bundle(
        original().primary,
        (CanonicalBlock(BlockType.BUNDLE_AGE, 2, h("19012c"), crc_type=CrcType.NONE), *original().blocks),
    )
    assert raw(aged) == A3_ORIGINAL
    # the source (ipn:2.1) encrypts the payload; a waypoint (ipn:3.0) signs the primary and age blocks
    sealed = add_bcb(aged, (1,), SRC, CEK_128, IV, variant=AesVariant.A128GCM, scope=ScopeFlag.NONE, number=4)
    signed = add_bib(
        sealed, (0, 2), parse_eid("ipn:3.0"), HMAC_KEY, variant=ShaVariant.HMAC_256, scope=ScopeFlag.NONE, number=3
    )
    assert encode_bundle(signed) == A3_FINAL  # creation time 0 with an age block: a valid bundle
    assert decode_bundle(A3_FINAL) == signed
    assert ippt(signed, 0, signed.blocks[0], 0) == h("00581c") + h(
        "88070000820282010282028202018202820201820018281a000f4240"
    )
    verify_bib(signed, signed.blocks[0], HMAC_KEY)
    assert decrypt_bcb(signed, signed.blocks[1], CEK_128).payload == PAYLOAD


def test_a4_bib_and_bcb_from_the_same_source_with_full_scope():
    signed = add_bib(original(), (1,), SRC, HMAC_KEY, variant=ShaVariant.HMAC_384, scope=ScopeFlag.ALL, number=3)
    assert ippt(signed, 1, signed.blocks[0], 7) == A4_IPPT
    cek = CEK_128 + CEK_128
    # the BCB encrypts the payload and the BIB over it (RFC 9172 3.9), and sits after the BIB
    sealed = add_bcb(signed, (3, 1), SRC, cek, IV, variant=AesVariant.A256GCM, scope=ScopeFlag.ALL, number=2, at=1)
    assert raw(sealed) == A4_FINAL
    opened = decrypt_bcb(sealed, sealed.blocks[1], cek)
    assert opened == signed
    verify_bib(opened, opened.blocks[0], HMAC_KEY)


def test_a_wrong_key_or_a_changed_byte_does_not_verify():
    signed = add_bib(original(), (1,), SRC, HMAC_KEY)
    with pytest.raises(SecurityError, match="does not match") as e:
        verify_bib(signed, signed.blocks[0], b"x" * 16)
    assert e.value.reason == "bib-mismatch"
    tampered = replace(signed, blocks=(signed.blocks[0], replace(signed.blocks[1], data=PAYLOAD.upper())))
    with pytest.raises(SecurityError, match="block 1"):
        verify_bib(tampered, tampered.blocks[0], HMAC_KEY)
    sealed = add_bcb(original(), (1,), SRC, CEK_128, IV, variant=AesVariant.A128GCM, kek=KEK)
    with pytest.raises(SecurityError) as e:
        decrypt_bcb(sealed, sealed.blocks[0], b"y" * 16)
    assert e.value.reason == "key-unwrap-failed"
    flipped = replace(sealed, blocks=(sealed.blocks[0], replace(sealed.blocks[1], data=b"\x00" + sealed.payload[1:])))
    with pytest.raises(SecurityError) as e:
        decrypt_bcb(flipped, flipped.blocks[0], KEK)
    assert e.value.reason == "bcb-tag-mismatch"
    # the BCB's header is in its AAD (scope 7): a relay clearing its flags breaks it
    moved = replace(sealed, blocks=(replace(sealed.blocks[0], flags=BlockFlag.NONE), sealed.blocks[1]))
    with pytest.raises(SecurityError, match="does not decrypt"):
        decrypt_bcb(moved, moved.blocks[0], KEK)


@pytest.mark.parametrize(
    ("data", "offset", "what"),
    [
        (h("80"), 0, "at least one security target"),
        (h("820101"), 2, "listed twice"),
        (h("81010100820282020180"), 9, "1 security targets but 0 result sets"),
        (h("8101010082028202018181820140ff"), 14, "trailing"),
        (h("81010101820282020180"), 10, "truncated"),  # parameters flagged, then no results
        (h("8101010082028202018161"), 10, "found a text string"),  # results must be arrays
    ],
)
def test_malformed_asbs_name_the_offset(data, offset, what):
    with pytest.raises(BundleDecodeError) as e:
        decode_asb(data, base=100)
    assert what in e.value.message and e.value.offset == 100 + offset, (e.value.message, e.value.offset)
