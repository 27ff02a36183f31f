"""The one table of bounds (callbacks.domain.bounds): one cleaner, and every reader agreeing with it."""

import pytest

from callbacks import conf
from callbacks.domain.bounds import SETTINGS, Bound
from callbacks.domain.policy import POLICY_FIELDS, clean_runtime_changes
from callbacks.errors import ApplicationError
from taskcenter.env import ConfigError, env_number

WHOLE = Bound(int, 0, 20)
SECONDS = Bound(float, 0.1, 60)


@pytest.mark.parametrize(("given", "cleaned"), [(7, 7), ("7", 7), (" 7 ", 7), (7.0, 7), ("7.0", 7), (0, 0)])
def test_whole_numbers_are_read_from_numbers_and_text(given, cleaned):
    assert WHOLE.clean(given) == cleaned
    assert type(WHOLE.clean(given)) is int


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (True, "must be a number"),
        (None, "must be a number"),
        ([1], "must be a number"),
        ("seven", "must be a whole number"),
        (7.5, "must be a whole number"),
        ("nan", "must be a number"),
        (float("inf"), "must be a number"),
        (21, "must be between 0 and 20"),
        (-1, "must be between 0 and 20"),
    ],
)
def test_what_is_refused_and_why(given, reason):
    with pytest.raises(ValueError, match=reason):
        WHOLE.clean(given)


def test_open_ended_bounds_say_which_side():
    assert Bound(int, 1).range_text() == "must be at least 1"
    assert Bound(float, None, 5).range_text() == "must be at most 5"
    assert SECONDS.clean("2.5") == 2.5


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("CALLBACKS_BACKOFF_INITIAL", "7200")
    with pytest.raises(ConfigError, match="CALLBACKS_BACKOFF_INITIAL='7200': must be between 0 and 3600"):
        env_number("CALLBACKS_BACKOFF_INITIAL", 1.0, SETTINGS["BACKOFF_INITIAL"])


def test_an_unset_or_empty_variable_is_the_default(monkeypatch):
    monkeypatch.delenv("CALLBACKS_MAX_RETRIES", raising=False)
    assert env_number("CALLBACKS_MAX_RETRIES", 3, SETTINGS["MAX_RETRIES"]) == 3
    monkeypatch.setenv("CALLBACKS_MAX_RETRIES", " ")
    assert env_number("CALLBACKS_MAX_RETRIES", 3, SETTINGS["MAX_RETRIES"]) == 3


def test_run_time_keys_are_bounded_as_their_setting():
    for key, bound in conf.RUNTIME_KEYS.items():
        assert bound is SETTINGS[key]
    with pytest.raises(ApplicationError) as refused:
        clean_runtime_changes({"BACKOFF_INITIAL": 3601, "NOT_A_KEY": 1})
    assert refused.value.fields == {
        "BACKOFF_INITIAL": ["must be between 0 and 3600"],
        "NOT_A_KEY": ["not a setting that can change at run time"],
    }


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("max_retries", "MAX_RETRIES"),
        ("backoff_initial_seconds", "BACKOFF_INITIAL"),
        ("backoff_max_seconds", "BACKOFF_MAX"),
        ("total_timeout_seconds", "TOTAL_TIMEOUT"),
        ("breaker_open_seconds", "BREAKER_OPEN_SECONDS"),
    ],
)
def test_a_tenant_policy_is_bounded_as_the_setting_it_overrides(field, key):
    bound = SETTINGS[key]
    assert POLICY_FIELDS[field](bound.maximum) == bound.maximum
    assert POLICY_FIELDS[field]("") is None
    with pytest.raises(ValueError, match="or empty for the default"):
        POLICY_FIELDS[field](bound.maximum + 1)
