"""What a policy is: a tenant's defaults for its tasks and protection settings, and the run-time
overrides of the installation's settings. Each number is bounded by the setting it overrides."""

from collections.abc import Mapping

from callbacks.domain import statuses
from callbacks.domain.bounds import RUNTIME_KEYS, SETTINGS, Bound
from callbacks.domain.rates import RateError, parse_rate
from callbacks.domain.urls import TargetUrlError, validate_target_url
from callbacks.errors import ApplicationError

INVALID_POLICY = "Invalid tenant policy."
INVALID_RUNTIME = "Invalid run-time settings."
# Upper, lower, why: a longest wait below the first one, or a deadline below the connect timeout,
# could never be honoured.
ORDERED_PAIRS = (
    ("backoff_max_seconds", "backoff_initial_seconds", "must be at least backoff_initial_seconds"),
    ("total_timeout_seconds", "connect_timeout_seconds", "must be at least connect_timeout_seconds"),
)


def _optional_number(bound: Bound):
    def clean(value):
        if value is None or value == "":
            return None
        try:
            return bound.clean(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, or empty for the default") from None

    return clean


def _success_statuses(value) -> str:
    if value in (None, ""):
        return ""
    try:
        return statuses.normalise(value)
    except statuses.StatusSpecError as exc:
        raise ValueError(str(exc)) from None


def _api_rate_limit(value) -> str:
    if value in (None, ""):
        return ""
    try:
        parse_rate(value)
    except RateError as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _notification_url(value) -> str:
    if value in (None, ""):
        return ""
    try:
        return validate_target_url(value)
    except TargetUrlError as exc:
        raise ValueError(str(exc)) from None


# The tenant fields a policy may set, each with its check (empty: the installation's default).
POLICY_FIELDS = {
    "max_retries": _optional_number(SETTINGS["MAX_RETRIES"]),
    "backoff_initial_seconds": _optional_number(SETTINGS["BACKOFF_INITIAL"]),
    "backoff_multiplier": _optional_number(SETTINGS["BACKOFF_MULTIPLIER"]),
    "backoff_max_seconds": _optional_number(SETTINGS["BACKOFF_MAX"]),
    "connect_timeout_seconds": _optional_number(SETTINGS["CONNECT_TIMEOUT"]),
    "total_timeout_seconds": _optional_number(SETTINGS["TOTAL_TIMEOUT"]),
    "success_statuses": _success_statuses,
    "max_concurrency_per_origin": _optional_number(SETTINGS["MAX_CONCURRENCY_PER_ORIGIN"]),
    "rate_limit_per_origin": _optional_number(SETTINGS["RATE_LIMIT_PER_ORIGIN"]),
    "breaker_failure_threshold": _optional_number(SETTINGS["BREAKER_FAILURE_THRESHOLD"]),
    "breaker_open_seconds": _optional_number(SETTINGS["BREAKER_OPEN_SECONDS"]),
    "api_rate_limit": _api_rate_limit,
    "enforce_whitelist": _boolean,
    "notification_url": _notification_url,
}


def _runtime_check(bound: Bound):
    def clean(value):
        return None if value is None else bound.clean(value)  # None clears the override

    return clean


RUNTIME_CHECKS = {key: _runtime_check(bound) for key, bound in RUNTIME_KEYS.items()}


def _clean_each(values: Mapping, checks: Mapping, *, unknown: str, message: str) -> dict:
    """Each value through its name's check; ApplicationError(message) naming every name at fault."""
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for name, value in values.items():
        check = checks.get(name)
        if check is None:
            errors[name] = [unknown]
            continue
        try:
            cleaned[name] = check(value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ApplicationError(message, fields=errors)
    return cleaned


def clean_policy(data: Mapping) -> dict:
    """The policy fields given, checked and normalised; ApplicationError naming each field at fault."""
    return _clean_each(data, POLICY_FIELDS, unknown="not a policy field", message=INVALID_POLICY)


def check_policy_order(values: Mapping) -> None:
    """ApplicationError when the policy as a whole (the fields set, changed or not) puts an upper value
    below its lower one."""
    for upper, lower, message in ORDERED_PAIRS:
        high, low = values.get(upper), values.get(lower)
        if high is not None and low is not None and high < low:
            raise ApplicationError(INVALID_POLICY, fields={upper: [message]})


def clean_runtime_changes(changes: Mapping) -> dict:
    """Run-time overrides, checked: a value within its key's bounds, or None to clear the override."""
    return _clean_each(
        changes, RUNTIME_CHECKS, unknown="not a setting that can change at run time", message=INVALID_RUNTIME
    )
