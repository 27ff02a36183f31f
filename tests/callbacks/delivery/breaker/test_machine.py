"""The breaker's pure state machine (callbacks/delivery/breaker/machine.py): which results count as
failures, and how long a breaker stays open."""

import pytest

from callbacks.delivery.breaker import machine

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("outcome", "status_code", "expected"),
    [
        ("timeout", None, machine.FAILURE),
        ("connection", None, machine.FAILURE),
        ("tls", None, machine.FAILURE),
        ("http_5xx", 503, machine.FAILURE),
        ("http_4xx", 429, machine.FAILURE),
        ("success", 200, machine.HEALTHY),
        ("http_4xx", 404, machine.HEALTHY),
        ("http_3xx", 302, machine.HEALTHY),
        ("http_unexpected", 204, machine.HEALTHY),
        ("too_large", 200, machine.HEALTHY),
        ("ssrf_blocked", None, None),
        ("whitelist_denied", None, None),
        ("interrupted", None, None),
        ("error", None, None),
    ],
)
def test_what_counts_as_a_failure(outcome, status_code, expected):
    assert machine.verdict(outcome, status_code) == expected


def test_open_period_doubles_per_opening_up_to_the_cap():
    periods = [machine.open_period(open_count=n, base=30.0) for n in (1, 2, 3, 4, 50)]

    assert periods == [30.0, 60.0, 100.0, 100.0, 100.0]


def test_slowing_down_halves_down_to_one_and_speeding_up_climbs_back_to_the_configured_limit():
    limit = None
    seen = []
    for _ in range(6):
        limit = machine.slow_down(limit, configured=20)
        seen.append(limit)
    assert seen == [10, 5, 2, 1, 1, 1]
    climbed = []
    for _ in range(20):
        limit = machine.speed_up(limit, configured=20)
        climbed.append(limit)
    assert climbed[:3] == [2, 3, 4] and climbed[17] == 19 and climbed[18:] == [None, None]
    assert machine.slow_down(50, configured=8) == 4  # a limit lowered meanwhile counts
