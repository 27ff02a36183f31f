"""Target URL checks and origins (callbacks.domain.urls)."""

import pytest

from callbacks.domain.urls import TargetUrlError, url_origin, validate_target_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "https://[::1]/",
        "https://bücher.example/",
        "http://billing:8080/hook",
        "http://a_b.example.com/path?q=1&r=%20",
        "HTTPS://EXAMPLE.COM",
    ],
)
def test_accepted(url):
    assert validate_target_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "http:///x",
        "http://u:p@example.com/",
        "http://example.com/#x",
        "http://example.com:99999/",
        "http://-x.example.com/",
        "http://999.1.1.1/",
        "http://[1.2.3.4]/",
        "http://x..example.com/",
        " http://example.com/",
        "http://example.com/" + "a" * 2000,
    ],
)
def test_refused(url):
    with pytest.raises(TargetUrlError):
        validate_target_url(url)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("HTTP://Example.COM/x", "http://example.com:80"),
        ("https://example.com/x", "https://example.com:443"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://[::1]:81/", "http://[::1]:81"),
        ("http://[0:0::1]:81/", "http://[::1]:81"),
        # One receiver, one origin: its limits, lanes and breaker are not split by spelling.
        ("https://example.com./x", "https://example.com:443"),
        ("https://Bücher.example./x", "https://xn--bcher-kva.example:443"),
        ("https://xn--bcher-kva.example/y", "https://xn--bcher-kva.example:443"),
        ("https://ｅｘａｍｐｌｅ.com/", "https://example.com:443"),
        ("https://straße.example.com/", "https://xn--strae-oqa.example.com:443"),
    ],
)
def test_origin(url, origin):
    assert url_origin(url) == origin


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://Straße.Example.com./a?b=1", "https://xn--strae-oqa.example.com/a?b=1"),
        ("http://bücher.example:8080/x/ü?", "http://xn--bcher-kva.example:8080/x/ü?"),
        ("http://example.com/x", "http://example.com/x"),
        ("http://[::1]:81/x", "http://[::1]:81/x"),
        ("http://127.0.0.1/x", "http://127.0.0.1/x"),
    ],
)
def test_sendable_url_carries_the_normalised_host(url, sent):
    from callbacks.domain.urls import sendable_url

    assert sendable_url(url) == sent
