"""One request on the wire (callbacks/delivery/http/attempt.py): prepared as requests' Session would prepare
it, and header values with line breaks refused before sending."""

import pytest

from callbacks.delivery.http import attempt as http_attempt
from tests.callbacks.delivery.http.sending import send


@pytest.mark.parametrize(
    "method, url, headers, body",
    [
        ("post", "http://example.com/hook?a=1&b=%2F", {"Content-Type": "application/json"}, b'{"x":1}'),
        ("GET", "http://example.com/p a th/ünï?q=ä b", {"X-Trace": "t"}, b""),
        ("PUT", "https://user:p%40ss@bücher.example:8443/x", {}, b"a=1&b=2"),
        ("DELETE", "http://example.com", {"Accept": "*/*"}, b""),
        # Names in another case than the session's defaults replace them: one header per name.
        ("POST", "http://example.com/", {"accept": "text/plain", "user-agent": "me"}, b"x"),
    ],
)
def test_requests_are_prepared_as_the_session_would(method, url, headers, body):
    """attempt._prepare skips Session.prepare_request's merging; what goes on the wire must not change."""
    import requests

    expected = requests.Session().prepare_request(
        requests.Request(method, url, headers=headers, data=body or None)
    )

    prepared = http_attempt._prepare(method, url, headers, body)

    assert (prepared.method, prepared.url, prepared.body) == (expected.method, expected.url, expected.body)
    assert dict(prepared.headers) == dict(expected.headers)


def test_a_body_goes_with_its_length_and_the_headers_as_given(receiver):
    raw = send(receiver.url, headers={"content-type": "text/plain", "X-Mixed-Case": "v"}, body=b"hello")

    [got] = receiver.wait_for(1)
    assert raw.status_code == 200
    assert got.body == b"hello"
    assert got.headers["content-length"] == "5" and "transfer-encoding" not in got.headers
    assert (got.headers["content-type"], got.headers["x-mixed-case"]) == ("text/plain", "v")


def test_header_values_with_line_breaks_are_refused_before_sending():
    import requests

    with pytest.raises(requests.exceptions.InvalidHeader):
        http_attempt._prepare("POST", "http://example.com/", {"X-Evil": "a\r\nInjected: 1"}, b"")
