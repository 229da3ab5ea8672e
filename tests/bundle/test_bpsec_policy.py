"""hilnet's BPSec policy and key files: a source protects, a relay leaves alone, the destination accepts."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilnet.bundle.blocks import BlockType
from hilnet.bundle.bpsec import (
    KeyRing,
    Protection,
    accept,
    decode_asb,
    format_keys,
    has_security_blocks,
    parse_keys,
    protect,
)
from hilnet.bundle.codec import decode_bundle, encode_bundle
from hilnet.bundle.make import make_bundle
from hilnet.errors import BundleDecodeError, KeyFileError, SecurityError

KEYS = parse_keys(
    "# two nodes\n"
    "ipn:1.0 integrity " + "11" * 32 + "\n"
    "ipn:1.0 confidentiality " + "22" * 32 + "  # key-encryption key\n"
    "\n"
    "ipn:2.0 integrity " + "33" * 16 + "\n"
)
BOTH = Protection.named("hmac-sha256", "aes256-gcm")


def bundle():
    return make_bundle("ipn:1.7", "ipn:3.1", b"the crew posts a photo" * 50, 3_600_000, creation_ms=1_000)


def test_protect_then_accept_round_trips_through_the_codec():
    sent = protect(bundle(), KEYS, BOTH, os.urandom)
    assert has_security_blocks(sent)
    assert b"the crew posts" not in encode_bundle(sent)
    bcb = decode_asb(sent.block(BlockType.BLOCK_CONFIDENTIALITY).data)
    bib_number = sent.block(BlockType.BLOCK_INTEGRITY).number
    assert bcb.targets == (bib_number, 1) and str(bcb.source) == "ipn:1.0"
    relayed = decode_bundle(encode_bundle(sent))  # a relay decodes and re-encodes: nothing changes
    assert relayed == sent
    assert accept(relayed, KEYS) == bundle()


@pytest.mark.parametrize("names", [("hmac-sha512", None), (None, "aes128-gcm"), ("hmac-sha384", "aes128-gcm")])
def test_each_service_alone_and_together(names):
    p = Protection.named(*names)
    assert p.names == names
    assert accept(protect(bundle(), KEYS, p, os.urandom), KEYS) == bundle()


def test_a_wrong_key_at_the_destination_fails_with_a_reason():
    sent = protect(bundle(), KEYS, BOTH, os.urandom)
    wrong = parse_keys(format_keys(KEYS).replace("22" * 32, "44" * 32))
    with pytest.raises(SecurityError) as e:
        accept(sent, wrong)
    assert e.value.reason == "key-unwrap-failed" and "ipn:1.0" in str(e.value)
    signed = protect(bundle(), KEYS, Protection.named("hmac-sha256", None), os.urandom)
    with pytest.raises(SecurityError) as e:
        accept(signed, parse_keys(format_keys(KEYS).replace("11" * 32, "55" * 32)))
    assert e.value.reason == "bib-mismatch"
    tampered = replace(signed, blocks=(*signed.blocks[:-1], replace(signed.payload_block, data=b"swapped")))
    with pytest.raises(SecurityError, match="does not match"):
        accept(tampered, KEYS)


def test_no_key_names_the_source():
    with pytest.raises(SecurityError, match="no integrity key for security source ipn:9.0") as e:
        protect(make_bundle("ipn:9.1", "ipn:1.1", b"x", 1000, creation_ms=5), KEYS, BOTH, os.urandom)
    assert e.value.reason == "no-key"
    with pytest.raises(SecurityError, match="no confidentiality key"):
        accept(protect(bundle(), KEYS, BOTH, os.urandom), KeyRing(KEYS.integrity, {}))


def test_key_file_round_trip():
    assert parse_keys(format_keys(KEYS)) == KEYS


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("ipn:1.0 integrity", "k:1:1", "expected SOURCE PURPOSE HEX, found 2 words"),
        ("\n  ipn:1.5 integrity " + "00" * 16, "k:2:3", "not a node id"),
        ("nowhere integrity " + "00" * 16, "k:1:1", "not a node id"),
        ("ipn:1.0 secrecy " + "00" * 16, "k:1:9", "purpose 'secrecy'"),
        ("ipn:1.0 integrity xyz", "k:1:19", "hexadecimal"),
        ("ipn:1.0 confidentiality " + "00" * 20, "k:1:25", "16 or 32 bytes, this one 20"),
        ("ipn:1.0 integrity " + "00" * 16 + "\nipn:1.0 integrity " + "01" * 16, "k:2:1", "a second integrity key"),
    ],
)
def test_key_file_errors_say_where(text, where, what):
    with pytest.raises(KeyFileError) as e:
        parse_keys(text, "k")
    assert str(e.value).startswith(where + ": ") and what in str(e.value), str(e.value)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="hmac-sha256, hmac-sha384, hmac-sha512"):
        Protection.named("hmac-md5", None)
    with pytest.raises(ValueError, match="aes128-gcm, aes256-gcm"):
        Protection.named(None, "aes-cbc")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mangled_security_block_fails_with_a_named_error_only(data):
    """Hostile input at the acceptor: any change to a BIB or BCB raises SecurityError or a decode error."""
    sent = protect(bundle(), KEYS, BOTH, lambda n: bytes(n))
    i = data.draw(st.integers(0, len(sent.blocks) - 2))  # a security block
    block = sent.blocks[i]
    raw = bytearray(block.data)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[at : at + data.draw(st.integers(1, 8))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    mangled = replace(sent, blocks=(*sent.blocks[:i], replace(block, data=bytes(raw)), *sent.blocks[i + 1 :]))
    try:
        opened = accept(mangled, KEYS)
    except (SecurityError, BundleDecodeError):
        return
    assert opened == bundle()  # a change that still verifies changed nothing that matters (e.g. re-encoded CBOR)


def test_a_short_iv_or_a_wrong_tag_size_is_a_security_error_not_a_crash():
    from hilnet.bundle.bpsec.asb import SecurityBlock, encode_asb

    sent = protect(bundle(), KEYS, Protection.named(None, "aes128-gcm"), os.urandom)
    bcb = sent.blocks[0]
    asb = decode_asb(bcb.data)
    for params, results, what in (
        (((1, b"1234"), *asb.parameters[1:]), asb.results, "initialization vector must have 8 to 128 bytes"),
        (asb.parameters, (((1, b"short"),),), "no 16-byte authentication tag"),
        ((asb.parameters[0], (2, 2), *asb.parameters[2:]), asb.results, "AES variant 2 is not 1 or 3"),
    ):
        bad = SecurityBlock(asb.targets, asb.context_id, asb.source, params, results)
        broken = replace(sent, blocks=(replace(bcb, data=encode_asb(bad)), *sent.blocks[1:]))
        with pytest.raises(SecurityError, match=what):
            accept(broken, KEYS)
