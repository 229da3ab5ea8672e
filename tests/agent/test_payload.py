import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hilnet.agent.payload import payload_for, payload_sha256


def test_pinned_vector_keeps_payloads_stable_across_versions():
    # Pinned once: a change here means controllers and agents of different
    # hilnet versions would disagree about every payload's digest.
    assert payload_for(1, 16).hex() == PINNED_1_16
    assert payload_sha256(7, 1000) == PINNED_7_1000_SHA


PINNED_1_16 = "06cf17714d53f5d4ad955c35f1e26798"
PINNED_7_1000_SHA = "7ce20e78c530984faa769992ea9beb96f7953a0c6aab865c02524fa882610fca"


def test_size_is_exact_and_zero_is_empty():
    assert payload_for(3, 0) == b""
    assert len(payload_for(3, 300 * 1024)) == 300 * 1024


def test_seeds_give_different_payloads():
    assert payload_for(0, 64) != payload_for(1, 64)
    # decimal encoding must not let 1 and 10 share a prefix-derived stream
    assert payload_for(1, 64) != payload_for(10, 64)[:64]


def test_large_payload_does_not_repeat_blocks():
    data = payload_for(5, 1 << 20)
    blocks = {data[i : i + 4096] for i in range(0, len(data), 4096)}
    assert len(blocks) == 256


@given(st.integers(min_value=0, max_value=2**80), st.integers(0, 5000), st.integers(0, 5000))
def test_prefix_property_and_digest(seed, a, b):
    short, long_ = sorted((a, b))
    assert payload_for(seed, long_)[:short] == payload_for(seed, short)
    assert payload_sha256(seed, long_) == hashlib.sha256(payload_for(seed, long_)).hexdigest()


@pytest.mark.parametrize("seed,size", [(-1, 10), (1.5, 10), (True, 10), (1, -1), (1, "10"), (1, 2**40)])
def test_bad_arguments(seed, size):
    with pytest.raises(ValueError):
        payload_for(seed, size)
