"""The one host-name normalisation (callbacks.domain.hosts): UTS 46 non-transitional, lower case, no
trailing dot."""

import pytest

from callbacks.domain.hosts import normalise_host


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("straße.example.com", "xn--strae-oqa.example.com"),
        ("STRASSE.example.com", "strasse.example.com"),
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("ｅｘａｍｐｌｅ。ｃｏｍ", "example.com"),
        ("_dmarc.bücher.example", "_dmarc.xn--bcher-kva.example"),
        ("billing", "billing"),
    ],
)
def test_names_are_normalised(given, normalised):
    assert normalise_host(given) == normalised


@pytest.mark.parametrize(
    "given", ["", "1.2.3", "a..b", "example.com..", "-x.example", "a b", "x" * 64 + ".example"]
)
def test_what_is_no_host_name_is_refused(given):
    with pytest.raises(ValueError):
        normalise_host(given)
