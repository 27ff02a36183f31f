"""The configurable header deny list: refused at creation, dropped at send time if denied since."""

import pytest

from callbacks.delivery.executor import build_headers, send_attempt
from callbacks.domain.headers import HeaderError, forbidden_reason, validate_headers
from tests.factories import make_task


@pytest.fixture
def deny(settings):
    def set_list(value):
        settings.CALLBACKS = {**settings.CALLBACKS, "DENIED_HEADERS": value}

    return set_list


def test_nothing_extra_is_denied_by_default():
    assert forbidden_reason("X-Internal-Route") is None
    assert forbidden_reason("Connection") is not None  # the hop-by-hop set stays


def test_names_and_prefixes(deny):
    deny(["X-Forwarded-For", "x-internal-*"])
    assert "CALLBACKS_DENIED_HEADERS" in forbidden_reason("x-forwarded-for")
    assert forbidden_reason("X-Internal-Route") is not None
    assert forbidden_reason("X-INTERNAL-") is not None
    assert forbidden_reason("X-Forwarded-Host") is None
    assert forbidden_reason("X-Internally") is None
    with pytest.raises(HeaderError) as caught:
        validate_headers({"X-Forwarded-For": "1.2.3.4", "X-Ok": "fine"})
    assert list(caught.value.errors) == ["X-Forwarded-For"]


def test_a_comma_separated_string_works_too(deny):
    deny("X-A, X-B*")
    assert forbidden_reason("x-a") and forbidden_reason("x-bee") and not forbidden_reason("x-c")


def test_the_api_refuses_a_denied_header_naming_it(api, deny):
    deny(["X-Internal-*"])
    response = api.post(
        "/api/v1/callbacks/",
        {"url": "https://example.com/", "headers": {"X-Internal-Token": "x"}},
        format="json",
    )
    assert response.status_code == 400
    assert "X-Internal-Token" in response.json()["error"]["fields"]["headers"]


def test_a_header_denied_after_registration_is_not_sent(tenant, receiver, deny):
    task = make_task(tenant=tenant, url=receiver.url, headers={"X-Internal-Route": "a", "X-Keep": "b"})
    deny(["X-Internal-*"])
    assert "X-Internal-Route" not in build_headers(task, 1, 0)
    result = send_attempt(task, attempt=1)
    got = receiver.wait_for(1)[0]
    assert "x-internal-route" not in got.headers and got.headers["x-keep"] == "b"
    assert "X-Internal-Route" not in result.request_headers
