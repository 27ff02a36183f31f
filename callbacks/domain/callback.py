"""What a valid callback is, whoever submits it: the API, a command, a schedule's fire.

`clean_callback` takes a callback's fields as plain values (what JSON decodes to, a datetime for run_at)
and returns them checked, normalised and with their defaults, or raises ApplicationError naming each
field at fault. task_create calls it itself; the API's serializers call the same field rules.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from callbacks.domain import encoding, statuses, tracecontext
from callbacks.domain.bounds import (
    DELAY_SECONDS,
    MAX_BODY_DEPTH,
    MAX_LABEL_LENGTH,
    MAX_SUCCESS_STATUSES_LENGTH,
    PRIORITY,
    SETTINGS,
)
from callbacks.domain.headers import validate_headers
from callbacks.domain.urls import TargetUrlError, validate_target_url
from callbacks.domain.vocabulary import BodyFormat, HttpMethod
from callbacks.errors import ApplicationError

QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
QUEUE_NAME_RULE = "must match ^[a-z0-9][a-z0-9_-]{0,63}$ (lower-case letters, digits, _ -)"
BODY_TOO_LARGE = "body_too_large"
BODY_TOO_LARGE_MESSAGE = "A callback's encoded body is over the size limit."
INVALID = "Invalid input."
# Each nested policy field, bounded by the setting it overrides.
BACKOFF_FIELDS = {
    "initial_seconds": SETTINGS["BACKOFF_INITIAL"],
    "multiplier": SETTINGS["BACKOFF_MULTIPLIER"],
    "max_seconds": SETTINGS["BACKOFF_MAX"],
}
TIMEOUT_FIELDS = {"connect_seconds": SETTINGS["CONNECT_TIMEOUT"], "total_seconds": SETTINGS["TOTAL_TIMEOUT"]}
# Upper, lower: the longest wait is never below the first one, the deadline never below the connect time.
BACKOFF_ORDER = ("max_seconds", "initial_seconds")
TIMEOUT_ORDER = ("total_seconds", "connect_seconds")
LABELS = ("business_id", "trace_id", "ordering_key")
DEFAULTS = {
    "method": HttpMethod.POST,
    "headers": {},
    "body": None,
    "body_format": BodyFormat.JSON,
    "priority": 5,
    "queue": "default",
}
# Set on a fire's callback by the schedule itself, never by input.
INTERNAL = ("schedule",)
# May be given as None: the same as not given.
OPTIONAL = (
    "run_at",
    "delay_seconds",
    "max_retries",
    "backoff",
    "timeout",
    "success_statuses",
    "idempotency_key",
    "traceparent",
)


def clean_callback(data: Mapping) -> dict:
    """The callback, checked and with its defaults; ApplicationError naming each field otherwise."""
    if not isinstance(data, Mapping):
        raise ApplicationError(
            INVALID, fields={"non_field_errors": ["must be an object of a callback's fields"]}
        )
    cleaned, errors = _clean_fields({**DEFAULTS, **data})
    if cleaned.get("run_at") is not None and cleaned.get("delay_seconds") is not None:
        errors["delay_seconds"] = ["give run_at or delay_seconds, not both"]
    disagreement = tracecontext.conflict(
        trace_id=cleaned.get("trace_id") or "", traceparent=cleaned.get("traceparent") or ""
    )
    if disagreement and "trace_id" not in errors:
        errors["trace_id"] = [disagreement]
    problem = body_problem(cleaned.get("body"), cleaned["body_format"]) if "body_format" in cleaned else None
    if problem is not None:
        errors["body"] = [problem[0]]
    if problem is not None and problem[1] == BODY_TOO_LARGE:
        # The one refusal a retry cannot fix by changing a field: 413, as the API answers it.
        raise ApplicationError(BODY_TOO_LARGE_MESSAGE, code=BODY_TOO_LARGE, fields=errors, status=413)
    if errors:
        raise ApplicationError(INVALID, fields=errors)
    return {**cleaned, **{name: data[name] for name in INTERNAL if name in data}}


def _clean_fields(values: dict) -> tuple[dict, dict]:
    """(cleaned values, errors by field) for each field on its own."""
    errors: dict = {name: ["unknown field"] for name in values if name not in (*FIELD_RULES, *INTERNAL)}
    if "url" not in values:
        errors["url"] = ["this field is required"]
    cleaned = {}
    for name in [name for name in FIELD_RULES if name in values]:
        if values[name] is None and name in OPTIONAL:
            cleaned[name] = None
            continue
        try:
            cleaned[name] = FIELD_RULES[name](values[name])
        except ValueError as exc:
            # Headers and the policy objects name the parts at fault; other fields give one reason.
            errors[name] = getattr(exc, "errors", None) or [str(exc)]
    return cleaned, errors


class NestedError(ValueError):
    """Reasons by field inside an object field (backoff, timeout)."""

    def __init__(self, errors: dict):
        super().__init__(str(errors))
        self.errors = errors


def body_problem(body, body_format: str) -> tuple[str, str] | None:
    """(why this body cannot be registered, code), or None. Over the size limit the code is body_too_large."""
    if _depth(body) > MAX_BODY_DEPTH:
        return f"nested more than {MAX_BODY_DEPTH} levels deep", "invalid"
    try:
        payload = encoding.encode(body, body_format)
    except encoding.BodyError as exc:
        return f"does not suit body_format {body_format!r}: {exc}", "invalid"
    if "\x00" in payload:
        return "NUL characters cannot be stored; encode binary data (e.g. base64)", "invalid"
    try:
        size = len(payload.encode("utf-8"))
    except UnicodeEncodeError:
        return "contains text that is not valid Unicode (a lone surrogate)", "invalid"
    limit = settings.CALLBACKS["REQUEST_BODY_LIMIT"]
    if size > limit:
        return f"{size} bytes once encoded; the limit is {limit} bytes", BODY_TOO_LARGE
    return None


def _depth(value) -> int:
    """How deeply a JSON value nests, found without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            if level > MAX_BODY_DEPTH:
                return level
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


def clean_queue_name(value) -> str:
    if not isinstance(value, str) or not QUEUE_NAME.fullmatch(value):
        raise ValueError(QUEUE_NAME_RULE)
    return value


def clean_success_statuses(value) -> str:
    try:
        spec = statuses.normalise(value)
    except statuses.StatusSpecError as exc:
        raise ValueError(str(exc)) from None
    if len(spec) > MAX_SUCCESS_STATUSES_LENGTH:
        raise ValueError(
            f"too long once normalised ({MAX_SUCCESS_STATUSES_LENGTH} characters at most); use ranges"
        )
    return spec


def ordered_problem(values: Mapping, upper: str, lower: str) -> str | None:
    """Why `upper` may not be below `lower` when both are given, or None."""
    if upper in values and lower in values and values[upper] < values[lower]:
        return f"must be at least {lower}"
    return None


def _choice(choices):
    def clean(value):
        if value not in choices.values:
            raise ValueError(f"{value!r} is not a valid choice ({', '.join(choices.values)})")
        return value

    return clean


def _url(value) -> str:
    try:
        return validate_target_url(value)
    except TargetUrlError as exc:
        raise ValueError(str(exc)) from None


def _policy_object(fields: dict, order: tuple[str, str]):
    def clean(value):
        if not isinstance(value, Mapping):
            raise ValueError("must be an object")
        errors = {name: ["unknown field"] for name in value if name not in fields}
        cleaned = {}
        for name, bound in fields.items():
            if name in value:
                try:
                    cleaned[name] = bound.clean(value[name])
                except ValueError as exc:
                    errors[name] = [str(exc)]
        problem = None if errors else ordered_problem(cleaned, *order)
        if problem:
            errors[order[0]] = [problem]
        if errors:
            raise NestedError(errors)
        return cleaned

    return clean


def _run_at(value):
    if value is None:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise ValueError("must be a date-time with a UTC offset")
    return value


def _label(*, blank: bool):
    def clean(value):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not blank and not value:
            raise ValueError("may not be blank")
        if len(value) > MAX_LABEL_LENGTH:
            raise ValueError(f"at most {MAX_LABEL_LENGTH} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    return clean


def _body(value):
    return value  # any JSON value; whether it suits body_format is checked with the other fields


FIELD_RULES = {
    "url": _url,
    "method": _choice(HttpMethod),
    "headers": validate_headers,
    "body": _body,
    "body_format": _choice(BodyFormat),
    "run_at": _run_at,
    "delay_seconds": DELAY_SECONDS.clean,
    "priority": PRIORITY.clean,
    "queue": clean_queue_name,
    "max_retries": SETTINGS["MAX_RETRIES"].clean,
    "backoff": _policy_object(BACKOFF_FIELDS, BACKOFF_ORDER),
    "timeout": _policy_object(TIMEOUT_FIELDS, TIMEOUT_ORDER),
    "success_statuses": clean_success_statuses,
    **{name: _label(blank=True) for name in LABELS},
    "idempotency_key": _label(blank=False),
    "traceparent": tracecontext.clean_traceparent,
}


def request_fingerprint(cleaned: Mapping) -> str:
    """A digest of a cleaned callback as its caller asked for it, so that an idempotency key repeated with
    another request can be told from the same request sent again. Defaults are filled in by clean_callback
    first, so leaving a field out and giving its default value are the same request."""
    asked = {name: value for name, value in cleaned.items() if name not in INTERNAL}
    text = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # one instant, whichever offset it was written with
    return str(value)
