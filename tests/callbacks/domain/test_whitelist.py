"""Whitelist patterns: what validate_pattern accepts and how entries match URLs (callbacks.domain.whitelist)."""

import pytest

from callbacks.domain.whitelist import Pattern, denial_reason, entry_matches, validate_pattern
from callbacks.errors import ApplicationError


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("*.Example.com", "*.example.com"),
        ("münchen.de", "xn--mnchen-3ya.de"),
        ("*.bücher.example", "*.xn--bcher-kva.example"),
        ("203.0.113.7", "203.0.113.7"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("2001:db8:0:0::1", "2001:db8::1"),
        ("billing", "billing"),
        ("  spaced.example  ", "spaced.example"),
    ],
)
def test_hosts_are_normalised(given, stored):
    assert validate_pattern(given).host == stored


@pytest.mark.parametrize(
    "host",
    [
        "",
        "*",
        "*.",
        "a.*.example.com",
        "*foo.example.com",
        "*.*.example.com",
        "*.10.0.0.1",
        "https://example.com",
        "example.com/path",
        "example.com:8080",
        "exa mple.com",
        "-bad-.example",
        "1.2.3",
        "x" * 64 + ".example",
        None,
    ],
)
def test_bad_hosts_are_refused_naming_the_field(host):
    with pytest.raises(ApplicationError) as caught:
        validate_pattern(host)
    assert list(caught.value.fields) == ["host"]
    assert caught.value.status == 400


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ApplicationError) as caught:
        validate_pattern("ok.example", "ftp", 70000, "hooks")
    assert set(caught.value.fields) == {"scheme", "port", "path_prefix"}
    assert "start with /" in caught.value.fields["path_prefix"][0]


@pytest.mark.parametrize("port", [0, -1, 65536, "http", True, 1.5, "80x"])
def test_bad_ports(port):
    with pytest.raises(ApplicationError) as caught:
        validate_pattern("example.com", "", port)
    assert "port" in caught.value.fields


@pytest.mark.parametrize("prefix", ["/a/../b", "/a/./b", "/a?x=1", "/a#f", "/a b"])
def test_bad_path_prefixes(prefix):
    with pytest.raises(ApplicationError) as caught:
        validate_pattern("example.com", "", None, prefix)
    assert "path_prefix" in caught.value.fields


def test_valid_pattern_fields():
    assert validate_pattern("example.com", "HTTPS", "8443", "/hooks") == Pattern(
        "example.com", "https", 8443, "/hooks"
    )
    assert validate_pattern("example.com", None, None, None) == Pattern("example.com", "", None, "")


def matches(url, host, scheme="", port=None, path_prefix=""):
    return entry_matches(validate_pattern(host, scheme, port, path_prefix), url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/x", True),
        ("http://api.example.com/x", True),
        ("HTTPS://API.EXAMPLE.COM./x", True),
        ("https://api.example.com:443/x", True),
        ("https://api.example.com:8443/x", False),  # no port in the entry: the default, not any
        ("http://api.example.com:443/x", False),  # 443 is not http's default
        ("https://example.com/x", False),
        ("https://evil-api.example.com/x", False),
        ("https://api.example.com.evil.net/x", False),
    ],
)
def test_exact_host(url, expected):
    assert matches(url, "api.example.com") is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example.com/", True),
        ("https://a.b.example.com/", True),
        ("https://example.com/", False),  # the bare suffix is not covered (documented)
        ("https://notexample.com/", False),
        ("https://a.example.com.evil/", False),
    ],
)
def test_wildcard_covers_subdomains_only(url, expected):
    assert matches(url, "*.example.com") is expected


def test_scheme_and_port():
    assert matches("https://h.example/", "h.example", "https")
    assert not matches("http://h.example/", "h.example", "https")
    assert matches("http://h.example:8080/", "h.example", "", 8080)
    assert matches("https://h.example:8080/", "h.example", "", 8080)
    assert not matches("http://h.example/", "h.example", "", 8080)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/hooks", True),
        ("/hooks/", True),
        ("/hooks/a/b?x=1", True),
        ("/hooksevil", False),
        ("/", False),
        ("", False),
        ("/hooks/../admin", False),
        ("/hooks/%2e%2e/admin", False),
        ("/hooks/%252e%252e/admin", False),
        ("/hooks/./a", False),
        ("/other/hooks", False),
    ],
)
def test_path_prefix_matches_whole_segments(path, expected):
    assert matches("https://h.example" + path, "h.example", "", None, "/hooks") is expected


def test_prefix_ending_in_slash():
    assert matches("https://h.example/hooks/x", "h.example", "", None, "/hooks/")
    assert not matches("https://h.example/hooks", "h.example", "", None, "/hooks/")


def test_ip_literals():
    assert matches("http://203.0.113.7/", "203.0.113.7")
    assert matches("http://[2001:db8::1]:8080/", "[2001:db8::1]", "", 8080)
    assert not matches("http://203.0.113.8/", "203.0.113.7")
    assert not matches("http://[::ffff:203.0.113.7]/", "203.0.113.7")


def test_unicode_url_host_matches_its_idna_entry():
    assert matches("https://münchen.de/", "münchen.de")
    assert matches("https://xn--mnchen-3ya.de/", "münchen.de")


def test_denial_reasons_are_readable():
    entries = [validate_pattern("h.example", "https", None, "/hooks")]
    assert denial_reason(entries, "https://h.example/hooks/1") is None
    assert "no enabled entries" in denial_reason([], "https://h.example/")
    assert "host other.example is not on" in denial_reason(entries, "https://other.example/")
    assert "outside the whitelist entries for h.example" in denial_reason(entries, "http://h.example/hooks")


@pytest.mark.parametrize(
    ("url", "entry", "expected"),
    [
        # UTS 46 non-transitional, as the sender encodes: straße is xn--strae-oqa, not strasse.
        ("https://straße.example.com/", "strasse.example.com", False),
        ("https://xn--strae-oqa.example.com/", "strasse.example.com", False),
        ("https://strasse.example.com/", "straße.example.com", False),
        ("https://xn--strae-oqa.example.com/", "straße.example.com", True),
        ("https://STRAßE.example.com./", "xn--strae-oqa.example.com", True),
        ("https://ｅｘａｍｐｌｅ.com/", "example.com", True),  # full-width letters map to ASCII
        ("https://a.ｅｘａｍｐｌｅ.com/", "*.example.com", True),
        ("https://faß.example/", "*.fass.example", False),
    ],
)
def test_names_match_as_the_sender_encodes_them(url, entry, expected):
    assert matches(url, entry) is expected


def test_an_entry_is_stored_as_the_sender_encodes_it():
    assert validate_pattern("straße.example.com").host == "xn--strae-oqa.example.com"


@pytest.mark.parametrize(
    "path",
    [
        "/hooks/..;/admin",
        "/hooks/..;jsessionid=x/admin",
        "/hooks/%2e%2e;/admin",
        "/hooks/%2e%2e%3b/admin",
        "/hooks/%25252e%25252e/admin",
        "/hooks/.;/a",
        "/hooks\\..\\admin",
        "/hooks/.. /admin",
        "/hooks/..%00/admin",
    ],
)
def test_dot_segments_in_every_spelling_never_pass_a_path_prefix(path):
    assert matches("https://h.example" + path, "h.example", "", None, "/hooks") is False


def test_a_path_prefix_with_a_parameterised_dot_segment_is_refused():
    with pytest.raises(ApplicationError):
        validate_pattern("h.example", path_prefix="/hooks/..;/admin")
