import random
from fractions import Fraction

import pytest

from hilnet.errors import UnitError
from hilnet.units import (
    BITS_PER_BYTE_8N1,
    MAX_BITS_PER_BYTE,
    MIN_BITS_PER_BYTE,
    check_bits_per_byte,
    format_duration,
    format_rate,
    format_size,
    framing_bits_per_byte,
    parse_baud,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
    scale_ratio,
    scenario_to_wall_ns,
    wall_to_scenario_ns,
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


def test_scenario_time_maps_to_wall_time_at_the_scale():
    # One wall second is one scenario minute at scale 60.
    assert scenario_to_wall_ns(120 * 10**9, 60) == 2 * 10**9
    assert scenario_to_wall_ns(300 * 10**9, 60.0) == 5 * 10**9
    assert wall_to_scenario_ns(10**9, 60) == 60 * 10**9
    assert scenario_to_wall_ns(95 * 60 * 10**9, 1440) == 3_958_333_333  # 95m / 1440, to the nearest ns
    assert scenario_to_wall_ns(10**9, 0.5) == 2 * 10**9
    assert wall_to_scenario_ns(-(10**9), 60) == -60 * 10**9  # before the run's start


def test_scale_is_the_decimal_that_was_written():
    assert scale_ratio(0.1) == Fraction(1, 10)  # not the binary float just above 1/10
    assert scale_ratio(60) == scale_ratio(60.0) == 60
    # Exact even where a float quotient is not: a year of scenario time at scale 0.1.
    year = 365 * 86400 * 10**9
    assert scenario_to_wall_ns(year + 1, 0.1) == (year + 1) * 10


def test_conversions_round_to_the_nearest_ns_ties_to_even():
    assert scenario_to_wall_ns(3, 2) == 2  # 1.5 -> 2
    assert scenario_to_wall_ns(5, 2) == 2  # 2.5 -> 2
    assert scenario_to_wall_ns(-3, 2) == -2
    rng = random.Random(9)
    for _ in range(2000):
        scale = rng.choice([60, 1440, 0.5, 3, 0.1, 7.25, 1e-3, 123456.789])
        t = rng.randrange(-(10**16), 10**16)
        exact = Fraction(repr(float(scale)))
        assert scenario_to_wall_ns(t, scale) == round(Fraction(t) / exact)
        assert wall_to_scenario_ns(t, scale) == round(Fraction(t) * exact)


@pytest.mark.parametrize("scale", [0, -5, 0.0, float("inf"), float("nan"), True, "60"])
def test_bad_scales(scale):
    with pytest.raises(UnitError, match="clock scale"):
        scenario_to_wall_ns(1, scale)


def test_bits_per_byte_follow_the_uart_character():
    assert (MIN_BITS_PER_BYTE, BITS_PER_BYTE_8N1, MAX_BITS_PER_BYTE) == (7, 10, 12)
    assert framing_bits_per_byte("8N1") == 10
    assert framing_bits_per_byte("8E1") == framing_bits_per_byte("8N2") == 11
    assert framing_bits_per_byte("8O2") == 12
    assert framing_bits_per_byte("5N1") == 7
    for bits in range(7, 13):
        assert check_bits_per_byte(bits) == bits
    for bad in (6, 13, 0, True, 10.0):
        with pytest.raises(UnitError, match=r"outside 7\.\.12"):
            check_bits_per_byte(bad)
    with pytest.raises(UnitError, match="UART framing"):
        framing_bits_per_byte("9N1")
