"""hilnet's BPSec policy and key files: a source protects, a relay leaves alone, the destination accepts."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

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
from hilnet.errors import KeyFileError, SecurityError

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
