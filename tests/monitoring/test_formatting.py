"""Figures formatted for people: no three-decimal noise, thousands separated, never a false 100 %."""

import pytest

from monitoring import formatting


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (0, "0"),
        (0.004, "< 0.01"),
        (0.25, "0.25"),
        (3.5, "3.5"),
        (3.0, "3"),
        (42.46, "42.5"),
        (1234.4, "1,234"),
    ],
)
def test_rates(value, shown):
    assert formatting.rate(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (1, "100 %"),
        (0.992, "99.2 %"),
        (0.9999, "> 99.9 %"),
        (0.5, "50 %"),
        (0, "0 %"),
        (0.0004, "< 0.1 %"),
    ],
)
def test_percentages(value, shown):
    assert formatting.percent(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "-"), (0.42, "0.4 ms"), (5, "5 ms"), (12.6, "13 ms"), (1250.2, "1,250 ms")]
)
def test_milliseconds(value, shown):
    assert formatting.ms(value) == shown


def test_counts_and_axis_ticks():
    assert formatting.count(1234567) == "1,234,567"
    assert [formatting.axis(v) for v in (0, 0.25, 2.5, 40, 1500, 2000)] == [
        "0",
        "0.25",
        "2.5",
        "40",
        "1.5k",
        "2k",
    ]
