"""The retry policy: backoff between durable attempts, and the decision after each attempt."""

from datetime import UTC, datetime, timedelta

import pytest

from callbacks.delivery.retry import Decision, backoff_seconds, decide
from callbacks.models import CallbackTask
from tests.callbacks.delivery.attempts import result

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def policy(**overrides):
    values = {"initial": 1.0, "multiplier": 1.5, "maximum": 60.0, "jitter": 0.0}
    values.update(overrides)
    return values


def test_backoff_sequence_grows_by_half_and_is_capped():
    waits = [backoff_seconds(retry_number=n, **policy()) for n in range(1, 14)]
    assert waits[:5] == [1.0, 1.5, 2.25, 3.375, 5.0625]
    assert waits[-1] == 60.0
    assert max(waits) == 60.0
    assert waits == sorted(waits)


def test_backoff_survives_huge_retry_numbers():
    assert backoff_seconds(retry_number=10_000, **policy()) == 60.0


@pytest.mark.parametrize("retry_number", [1, 3, 20])
def test_jitter_stays_within_its_fraction(retry_number):
    base = backoff_seconds(retry_number=retry_number, **policy())
    low = backoff_seconds(retry_number=retry_number, rand=lambda: 0.0, **policy(jitter=0.1))
    high = backoff_seconds(retry_number=retry_number, rand=lambda: 0.999999, **policy(jitter=0.1))
    assert low == pytest.approx(base * 0.9)
    assert high == pytest.approx(base * 1.1, rel=1e-5)
    draws = [backoff_seconds(retry_number=retry_number, **policy(jitter=0.1)) for _ in range(500)]
    assert all(base * 0.9 <= d <= base * 1.1 for d in draws)
    assert len(set(draws)) > 1


def task(*, attempts, max_retries=3):
    return CallbackTask(
        attempts=attempts,
        max_retries=max_retries,
        backoff_initial_seconds=1.0,
        backoff_multiplier=1.5,
        backoff_max_seconds=60.0,
    )


@pytest.fixture(autouse=True)
def no_jitter(callbacks_settings):
    callbacks_settings(BACKOFF_JITTER=0.0, RETRY_AFTER_MAX=100.0)


def test_success_succeeds():
    assert decide(task(attempts=1), result("success", retryable=False), now=NOW) == Decision(
        "succeeded", None
    )


@pytest.mark.parametrize("outcome", ["http_4xx", "http_3xx", "tls", "ssrf_blocked", "http_unexpected"])
def test_not_retryable_fails_at_once(outcome):
    assert decide(task(attempts=1), result(outcome, retryable=False), now=NOW) == Decision("failed", None)


@pytest.mark.parametrize(("attempts", "wait"), [(1, 1.0), (2, 1.5), (3, 2.25)])
def test_retryable_with_attempts_left_retries_after_the_backoff(attempts, wait):
    decision = decide(task(attempts=attempts), result("http_5xx", retryable=True), now=NOW)
    assert decision == Decision("retrying", NOW + timedelta(seconds=wait))


def test_retryable_with_no_attempts_left_is_dead():
    # max_retries 3: four attempts in all.
    assert decide(task(attempts=4), result("timeout", retryable=True), now=NOW) == Decision("dead", None)
    assert (
        decide(task(attempts=1, max_retries=0), result("connection", retryable=True), now=NOW).status
        == "dead"
    )


def test_retry_after_longer_than_the_backoff_wins():
    decision = decide(task(attempts=1), result("http_4xx", retryable=True, retry_after=30.0), now=NOW)
    assert decision == Decision("retrying", NOW + timedelta(seconds=30))


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    decision = decide(task(attempts=3), result("http_5xx", retryable=True, retry_after=0.5), now=NOW)
    assert decision.next_attempt_at == NOW + timedelta(seconds=2.25)


def test_retry_after_is_bounded():
    decision = decide(task(attempts=1), result("http_5xx", retryable=True, retry_after=86400.0), now=NOW)
    assert decision.next_attempt_at == NOW + timedelta(seconds=100)


def test_retry_after_does_not_revive_a_dead_task():
    assert (
        decide(task(attempts=4), result("http_5xx", retryable=True, retry_after=5.0), now=NOW).status
        == "dead"
    )
