"""Link tokens: signed, only their digest kept, bounded lifetimes."""

import pytest

from callbacks.errors import ApplicationError
from portal import links


def test_a_token_carries_a_secret_whose_digest_is_stored():
    token, digest = links.new_token()
    assert links.token_digest(token) == digest
    assert digest not in token and len(digest) == 64


def test_tokens_differ_each_time():
    assert links.new_token()[0] != links.new_token()[0]


def test_an_altered_token_has_no_digest():
    token, _ = links.new_token()
    secret, signature = token.split(".")
    assert links.token_digest(f"{secret}x.{signature}") is None
    assert links.token_digest(f"{secret}.{signature[:-2]}") is None
    assert links.token_digest(secret) is None


@pytest.mark.parametrize("given,hours", [(None, 24), ("", 24), (1, 1), ("168", 168)])
def test_lifetimes_within_the_bounds(given, hours):
    assert links.clean_hours(given) == hours


@pytest.mark.parametrize("given", [0, 169, -3, "a day", "1.5"])
def test_lifetimes_outside_the_bounds_name_the_field(given):
    with pytest.raises(ApplicationError) as error:
        links.clean_hours(given)
    assert error.value.fields == {"hours": ["a whole number of hours from 1 to 168"]}
