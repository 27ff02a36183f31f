"""What a valid callback is for every caller that is not the API (callbacks.domain.callback): commands,
schedule fires and task_create itself. The API's own messages are in tests/callbacks/api."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from callbacks.domain.callback import clean_callback
from callbacks.domain.schedule import validate_template
from callbacks.errors import ApplicationError

URL = "https://example.com/hook"


def refusal(data) -> dict:
    with pytest.raises(ApplicationError) as refused:
        clean_callback(data)
    assert refused.value.code == "invalid"
    return refused.value.fields


def test_defaults_are_filled_in():
    assert clean_callback({"url": URL}) == {
        "url": URL,
        "method": "POST",
        "headers": {},
        "body": None,
        "body_format": "json",
        "priority": 5,
        "queue": "default",
    }


def test_every_field_at_fault_is_named_at_once():
    fields = refusal(
        {
            "url": "ftp://example.com/",
            "priority": 12,
            "queue": "Bad Queue",
            "headers": {"Host": "x"},
            "backoff": {"initial_seconds": 10, "max_seconds": 5},
            "colour": "blue",
        }
    )
    assert set(fields) == {"url", "priority", "queue", "headers", "backoff", "colour"}
    assert fields["headers"] == {"Host": ["set by the HTTP client itself, refused"]}
    assert fields["backoff"] == {"max_seconds": ["must be at least initial_seconds"]}


def test_a_url_is_required_and_run_at_excludes_a_delay():
    assert "url" in refusal({})
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert "delay_seconds" in refusal({"url": URL, "run_at": at, "delay_seconds": 5})
    assert "run_at" in refusal({"url": URL, "run_at": datetime(2030, 1, 1)})


def test_the_body_must_suit_its_format():
    assert "body" in refusal({"url": URL, "body_format": "xml", "body": "<a>"})


def test_a_body_over_the_limit_is_413(settings):
    with override_settings(CALLBACKS={**settings.CALLBACKS, "REQUEST_BODY_LIMIT": 10}):
        with pytest.raises(ApplicationError) as refused:
            clean_callback({"url": URL, "body_format": "raw", "body": "x" * 11})
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")


def test_a_template_is_a_callback_without_its_one_off_fields():
    with pytest.raises(ApplicationError) as refused:
        validate_template({"url": URL, "priority": 12, "idempotency_key": "k"})
    assert set(refused.value.fields["task_template"]) == {"priority", "idempotency_key"}
    assert validate_template({"url": URL, "priority": 7})["priority"] == 7
