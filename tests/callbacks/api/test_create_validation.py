"""Every input rule of POST /api/v1/callbacks/: a 400 (or 413) naming the field and the reason, nothing stored."""

import json

import pytest
from django.conf import settings
from django.test import override_settings

from callbacks.models import AuditLog, CallbackTask, TaskEvent
from tests.factories import declare_queues

URL = "/api/v1/callbacks/"
VALID = {"url": "https://example.com/hook"}


def refused(api, payload, *, status=400):
    response = api.post(URL, payload, format="json")
    assert response.status_code == status, response.content
    assert not CallbackTask.objects.exists()
    assert not TaskEvent.objects.exists()
    assert not AuditLog.objects.exists()
    return response.json()["error"]


def field_reasons(error, path):
    """The reasons listed for a field; path is a dotted path into error.fields."""
    node = error["fields"]
    for part in path.split("."):
        node = node[part]
    return " ".join(node) if isinstance(node, list) else json.dumps(node)


INVALID = [
    # (name, changes to a valid payload, field at fault, part of the reason)
    ("url missing", {"url": None}, "url", "null"),
    ("url absent", {"url": ...}, "url", "required"),
    ("url empty", {"url": ""}, "url", "blank"),
    ("url ftp", {"url": "ftp://example.com/f"}, "url", "http and https"),
    ("url javascript", {"url": "javascript:alert(1)"}, "url", "http and https"),
    ("url relative", {"url": "/just/a/path"}, "url", "http and https"),
    ("url no host", {"url": "http:///path"}, "url", "no host"),
    ("url too long", {"url": "https://example.com/" + "a" * 1990}, "url", "2000"),
    ("url credentials", {"url": "https://user:secret@example.com/"}, "url", "credentials"),
    ("url username", {"url": "https://user@example.com/"}, "url", "credentials"),
    ("url fragment", {"url": "https://example.com/hook#part"}, "url", "fragment"),
    ("url space", {"url": "https://exa mple.com/"}, "url", "whitespace"),
    ("url newline", {"url": "https://example.com/\r\nX: y"}, "url", "whitespace"),
    ("url bad port", {"url": "https://example.com:99999/"}, "url", "Port out of range"),
    ("url port zero", {"url": "https://example.com:0/"}, "url", "port 0"),
    ("url bad host", {"url": "https://-bad-.example.com/"}, "url", "host name"),
    ("url bad ipv4", {"url": "http://300.1.1.1/"}, "url", "IPv4"),
    ("url not a string", {"url": ["https://example.com"]}, "url", "valid string"),
    ("method unknown", {"method": "TRACE"}, "method", "not a valid choice"),
    ("method lower case", {"method": "post"}, "method", "not a valid choice"),
    ("headers not object", {"headers": ["X-A: 1"]}, "headers", "object"),
    ("header value number", {"headers": {"X-A": 1}}, "headers.X-A", "string"),
    ("header name space", {"headers": {"Bad Name": "x"}}, "headers.Bad Name", "legal header name"),
    ("header name colon", {"headers": {"X-A:": "x"}}, "headers.X-A:", "legal header name"),
    ("header name empty", {"headers": {"": "x"}}, "headers.", "legal header name"),
    ("header value CRLF", {"headers": {"X-A": "a\r\nX-Injected: 1"}}, "headers.X-A", "CR, LF"),
    ("header value LF", {"headers": {"X-A": "a\nb"}}, "headers.X-A", "CR, LF"),
    ("header value CR", {"headers": {"X-A": "a\rb"}}, "headers.X-A", "CR, LF"),
    ("header value NUL", {"headers": {"X-A": "a\x00b"}}, "headers.X-A", "NUL"),
    ("header value non latin-1", {"headers": {"X-A": "\u2603"}}, "headers.X-A", "Latin-1"),
    ("header too big", {"headers": {"X-A": "v" * 8200}}, "headers.X-A", "8192 bytes"),
    ("too many headers", {"headers": {f"X-H{i}": "v" for i in range(101)}}, "headers.headers", "at most 100"),
    ("header repeated", {"headers": {"X-A": "1", "x-a": "2"}}, "headers.x-a", "repeated"),
    *[
        (f"header {name}", {"headers": {name: "x"}}, f"headers.{name}", reason)
        for name, reason in [
            ("Connection", "hop-by-hop"),
            ("Keep-Alive", "hop-by-hop"),
            ("Proxy-Connection", "hop-by-hop"),
            ("Transfer-Encoding", "hop-by-hop"),
            ("TE", "hop-by-hop"),
            ("Trailer", "hop-by-hop"),
            ("Upgrade", "hop-by-hop"),
            ("upgrade", "hop-by-hop"),
            ("Host", "HTTP client"),
            ("Content-Length", "HTTP client"),
            ("X-Callback-Attempt", "callback service"),
            ("x-callback-task-id", "callback service"),
            ("X-Callback-Anything", "callback service"),
            ("webhook-id", "callback service"),
            ("Webhook-Timestamp", "callback service"),
            ("webhook-signature", "callback service"),
            ("traceparent", "callback service"),
            ("X-Trace-Id", "callback service"),
            ("X-Business-Id", "callback service"),
        ]
    ],
    ("body_format unknown", {"body_format": "yaml"}, "body_format", "not a valid choice"),
    ("xml body not a string", {"body_format": "xml", "body": {"a": 1}}, "body", "string"),
    ("xml body not well formed", {"body_format": "xml", "body": "<a><b></a>"}, "body", "well-formed"),
    ("form body not an object", {"body_format": "form", "body": "a=1"}, "body", "object"),
    ("form body nested", {"body_format": "form", "body": {"a": {"b": 1}}}, "body", "values must be"),
    ("form body null value", {"body_format": "form", "body": {"a": None}}, "body", "values must be"),
    ("raw body not a string", {"body_format": "raw", "body": [1, 2]}, "body", "string"),
    ("raw body NUL", {"body_format": "raw", "body": "a\x00b"}, "body", "NUL"),
    ("json body nested too deep", {"body": json.loads("[" * 70 + "]" * 70)}, "body", "nested more than"),
    ("run_at naive", {"run_at": "2030-01-01T09:00:00"}, "run_at", "UTC offset"),
    ("run_at not a time", {"run_at": "tomorrow"}, "run_at", "format"),
    ("run_at date only", {"run_at": "2030-01-01"}, "run_at", "UTC offset"),
    ("run_at and delay", {"run_at": "2030-01-01T09:00:00Z", "delay_seconds": 5}, "delay_seconds", "not both"),
    ("delay negative", {"delay_seconds": -1}, "delay_seconds", "greater than or equal to 0"),
    ("delay over a year", {"delay_seconds": 31536001}, "delay_seconds", "less than or equal to 31536000"),
    ("delay fractional", {"delay_seconds": 1.5}, "delay_seconds", "valid integer"),
    ("priority below", {"priority": -1}, "priority", "greater than or equal to 0"),
    ("priority above", {"priority": 10}, "priority", "less than or equal to 9"),
    ("priority word", {"priority": "high"}, "priority", "valid integer"),
    ("priority boolean", {"priority": True}, "priority", "valid integer"),
    ("queue upper case", {"queue": "Default"}, "queue", "must match"),
    ("queue leading dash", {"queue": "-fast"}, "queue", "must match"),
    ("queue space", {"queue": "a b"}, "queue", "must match"),
    ("queue newline", {"queue": "fa\nst"}, "queue", "must match"),
    ("queue too long", {"queue": "q" * 65}, "queue", "must match"),
    ("queue empty", {"queue": ""}, "queue", "blank"),
    ("max_retries below", {"max_retries": -1}, "max_retries", "greater than or equal to 0"),
    ("max_retries above", {"max_retries": 21}, "max_retries", "less than or equal to 20"),
    ("backoff not object", {"backoff": 5}, "backoff.non_field_errors", "dictionary"),
    ("backoff initial below", {"backoff": {"initial_seconds": -1}}, "backoff.initial_seconds", "greater"),
    ("backoff initial above", {"backoff": {"initial_seconds": 3601}}, "backoff.initial_seconds", "less"),
    ("backoff multiplier below", {"backoff": {"multiplier": 0.5}}, "backoff.multiplier", "greater"),
    ("backoff multiplier above", {"backoff": {"multiplier": 11}}, "backoff.multiplier", "less"),
    ("backoff max below", {"backoff": {"max_seconds": -1}}, "backoff.max_seconds", "greater"),
    ("backoff max above", {"backoff": {"max_seconds": 86401}}, "backoff.max_seconds", "less"),
    (
        "backoff max under initial",
        {"backoff": {"initial_seconds": 10, "max_seconds": 5}},
        "backoff.max_seconds",
        "at least",
    ),
    ("backoff NaN", {"backoff": {"initial_seconds": "NaN"}}, "backoff.initial_seconds", "valid number"),
    ("backoff unknown key", {"backoff": {"factor": 2}}, "backoff.factor", "unknown field"),
    ("timeout connect below", {"timeout": {"connect_seconds": 0.05}}, "timeout.connect_seconds", "greater"),
    ("timeout connect above", {"timeout": {"connect_seconds": 61}}, "timeout.connect_seconds", "less"),
    ("timeout total below", {"timeout": {"total_seconds": 0.05}}, "timeout.total_seconds", "greater"),
    ("timeout total above", {"timeout": {"total_seconds": 901}}, "timeout.total_seconds", "less"),
    (
        "timeout total under connect",
        {"timeout": {"connect_seconds": 10, "total_seconds": 5}},
        "timeout.total_seconds",
        "at least",
    ),
    ("timeout unknown key", {"timeout": {"read_seconds": 5}}, "timeout.read_seconds", "unknown field"),
    ("success_statuses word", {"success_statuses": "ok"}, "success_statuses", "not a status code"),
    ("success_statuses out of range", {"success_statuses": "200-600"}, "success_statuses", "100 to 599"),
    ("success_statuses backwards", {"success_statuses": "299-200"}, "success_statuses", "backwards"),
    ("success_statuses empty list", {"success_statuses": []}, "success_statuses", "at least one"),
    ("success_statuses bad item", {"success_statuses": [200, None]}, "success_statuses", "not a status code"),
    ("success_statuses object", {"success_statuses": {"200": True}}, "success_statuses", "string like"),
    (
        "success_statuses too long",
        {"success_statuses": list(range(100, 600, 2))},
        "success_statuses",
        "too long",
    ),
    ("business_id too long", {"business_id": "b" * 201}, "business_id", "200"),
    ("trace_id too long", {"trace_id": "t" * 201}, "trace_id", "200"),
    ("idempotency_key too long", {"idempotency_key": "k" * 201}, "idempotency_key", "200"),
    ("idempotency_key blank", {"idempotency_key": ""}, "idempotency_key", "blank"),
    ("ordering_key too long", {"ordering_key": "o" * 201}, "ordering_key", "200"),
    ("business_id NUL", {"business_id": "a\x00b"}, "business_id", "Null characters"),
    ("unknown field", {"colour": "blue"}, "colour", "unknown field"),
    ("misspelt field", {"max_retry": 3}, "max_retry", "unknown field"),
]


@pytest.mark.parametrize(
    ("changes", "field", "reason"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_is_refused_naming_the_field(api, changes, field, reason):
    payload = {**VALID, **changes}
    payload = {name: value for name, value in payload.items() if value is not ...}
    error = refused(api, payload)
    assert error["code"] == "invalid"
    assert reason in field_reasons(error, field)


def test_every_listed_field_is_accepted_together(api):
    declare_queues("fast_lane-1")
    """The counterpart of the table above: the same fields with valid values are stored."""
    payload = {
        "url": "https://example.com:8443/hook?x=1",
        "method": "PUT",
        "headers": {"Authorization": "Bearer abc", "X-Request-Source": "erp"},
        "body": {"order": 1},
        "body_format": "json",
        "delay_seconds": 31536000,
        "priority": 9,
        "queue": "fast_lane-1",
        "max_retries": 20,
        "backoff": {"initial_seconds": 3600, "multiplier": 10, "max_seconds": 86400},
        "timeout": {"connect_seconds": 0.1, "total_seconds": 900},
        "success_statuses": [200, 202],
        "business_id": "b" * 200,
        "trace_id": "t" * 200,
        "idempotency_key": "k" * 200,
        "ordering_key": "o" * 200,
    }
    response = api.post(URL, payload, format="json")
    assert response.status_code == 201, response.content
    assert CallbackTask.objects.count() == 1


def test_body_over_the_limit_is_413_naming_the_body(api):
    limited = {**settings.CALLBACKS, "REQUEST_BODY_LIMIT": 100}
    with override_settings(CALLBACKS=limited):
        ok = api.post(URL, {**VALID, "body_format": "raw", "body": "x" * 100}, format="json")
        assert ok.status_code == 201
        CallbackTask.objects.all().delete()
        TaskEvent.objects.all().delete()
        AuditLog.objects.all().delete()
        # 101 bytes once encoded as UTF-8, though only 51 characters.
        error = refused(api, {**VALID, "body_format": "raw", "body": "é" * 50 + "x"}, status=413)
    assert error["code"] == "body_too_large"
    assert "limit is 100 bytes" in field_reasons(error, "body")


def test_request_over_the_upload_limit_is_refused_unread(api):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048):
        # Not even JSON: had it been parsed, the answer would be a parse error.
        response = api.post(URL, "{" * 4096, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not CallbackTask.objects.exists()


def test_malformed_json_is_a_parse_error(api):
    response = api.post(URL, '{"url": "https://example.com/",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert not CallbackTask.objects.exists()


def test_json_nested_beyond_the_parser_is_a_parse_error(api):
    response = api.post(URL, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_body_that_is_not_an_object_is_refused(api):
    error = refused(api, ["https://example.com/"])
    assert "dictionary" in field_reasons(error, "non_field_errors")


def test_other_content_types_are_refused(api):
    response = api.post(URL, "url=https://example.com/", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert not CallbackTask.objects.exists()


def test_a_header_name_with_a_lone_surrogate_is_400_naming_it_escaped(api):
    # Valid JSON ("\\ud800" is an escape JSON allows), but no valid UTF-8: the error must still be sendable.
    response = api.post(
        URL,
        data=b'{"url": "https://example.com/hook", "headers": {"X-\\ud800": "v"}}',
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    reasons = response.json()["error"]["fields"]["headers"]
    assert list(reasons) == ["X-\\ud800"]
    assert "not a legal header name" in reasons["X-\\ud800"][0]
    assert not CallbackTask.objects.exists()
