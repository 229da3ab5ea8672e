import pytest

from hilnet.errors import UnitError
from hilnet.units import (
    format_duration,
    format_rate,
    format_size,
    parse_baud,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    "text, ns",
    [
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("1.1s", 1_100_000_000),
        ("2m", 120_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1m30s", 90_000_000_000),
        ("95m", 95 * 60 * 10**9),
        ("120us", 120_000),
        ("10ns", 10),
        ("0", 0),
        (0, 0),
        ("3d", 3 * 86400 * 10**9),
        ("1 h 30 m", 5_400_000_000_000),
    ],
)
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("5", "has no unit"),
        ("-2s", "negative"),
        ("10 parsecs", "cannot read"),
        ("1s1s", "repeats unit"),
        ("400d", "longer than a year"),
        ("", "empty"),
        (True, "got bool"),
    ],
)
def test_bad_durations(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        parse_duration(text)


@pytest.mark.parametrize(
    "text, bps",
    [
        ("9600bit/s", 9600),
        ("10Mbit/s", 10_000_000),
        ("1.5MB/s", 12_000_000),
        ("2Mbps", 2_000_000),
        ("115.2kbit/s", 115_200),
        ("1Gbit/s", 10**9),
        ("10 Mbit/s", 10_000_000),
    ],
)
def test_rates(text, bps):
    assert parse_rate(text) == bps


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("10 Mbps?", "cannot read"),
        ("10", "no unit"),
        ("-5Mbit/s", "negative"),
        ("0bit/s", "above zero"),
        ("10Tbit/s", "unknown rate unit"),
        ("999Gbit/s", "above 400Gbit/s"),
    ],
)
def test_bad_rates(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        parse_rate(text)


@pytest.mark.parametrize(
    "text, n",
    [("280B", 280), ("300KiB", 307_200), ("2MB", 2_000_000), ("1.5GiB", 3 * 2**29), (512, 512), ("0", 0)],
)
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize(
    "text, fragment",
    [("1.5B", "whole number"), ("-1KiB", "negative"), ("3kb", "unknown size unit"), ("2TiB", "unknown size unit")],
)
def test_bad_sizes(text, fragment):
    with pytest.raises(UnitError, match=fragment):
        parse_size(text)


def test_fractions():
    assert parse_fraction("0.5%") == 0.005
    assert parse_fraction("1e-6") == 1e-6
    assert parse_fraction(0.25) == 0.25
    with pytest.raises(UnitError, match="outside 0..1"):
        parse_fraction("150%")
    with pytest.raises(UnitError, match="cannot read"):
        parse_fraction("lots")


def test_baud():
    assert parse_baud(115200) == 115200
    assert parse_baud("9600baud") == 9600
    with pytest.raises(UnitError, match="outside"):
        parse_baud(10)
    with pytest.raises(UnitError, match="cannot read"):
        parse_baud("fast")


def test_formatting_round_trips():
    for ns in (0, 250_000_000, 5_400_000_000_000, 1_500_000_000, 120_000):
        assert parse_duration(format_duration(ns)) == ns
    assert format_rate(10_000_000) == "10Mbit/s"
    assert format_size(307_200) == "300KiB"
