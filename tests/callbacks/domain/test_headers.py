"""The header rules shared by registration and sending (callbacks.domain.headers)."""

import pytest

from callbacks.domain.headers import FORBIDDEN_HEADERS, HeaderError, forbidden_reason, validate_headers


def test_cleaned_headers_keep_names_and_strip_values():
    cleaned = validate_headers(
        {"X-Signature-Version": " 2 ", "Content-Type": "application/xml", "X-Empty": ""}
    )
    assert cleaned == {"X-Signature-Version": "2", "Content-Type": "application/xml", "X-Empty": ""}


def test_every_error_is_reported_at_once_by_name():
    with pytest.raises(HeaderError) as caught:
        validate_headers({"Host": "evil", "X-Ok": "fine", "X-Bad": "a\r\nb", "Bad Name": "x"})
    assert set(caught.value.errors) == {"Host", "X-Bad", "Bad Name"}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_HEADERS) + ["X-Callback-Task-Id", "X-CALLBACK-ATTEMPT"])
def test_forbidden_names_have_a_reason_in_any_case(name):
    assert forbidden_reason(name) is not None
    assert forbidden_reason(name.upper()) is not None


@pytest.mark.parametrize("name", ["Authorization", "Content-Type", "User-Agent", "X-Request-Id", "Accept"])
def test_ordinary_names_are_allowed(name):
    assert forbidden_reason(name) is None


def test_tab_and_latin1_are_legal_in_values():
    assert validate_headers({"X-A": "a\tb \xe9"}) == {"X-A": "a\tb \xe9"}
