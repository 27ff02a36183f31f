"""URL whitelist patterns: what a valid entry is, and whether a URL falls under one.

An entry is a host pattern with an optional scheme, port and path prefix:

- host: an exact name (``api.example.com``), an IP literal (``203.0.113.7``, ``2001:db8::1``), or
  ``*.suffix``, which matches every name *below* the suffix (``a.example.com``, ``a.b.example.com``) but not
  the bare suffix itself: write a second entry for ``example.com`` if it is meant too. Names are compared
  as callbacks.domain.hosts normalises them (UTS 46, ``xn--`` form, no trailing dot), the form the sender
  connects to: ``straße.example.com`` is ``xn--strae-oqa.example.com``, not ``strasse.example.com``.
- scheme: ``http``, ``https`` or empty for both.
- port: 1..65535, or empty for *the scheme's default port* (80 or 443), never "any port": an entry for
  ``example.com`` must not open ``example.com:8080``, where another service may listen.
- path_prefix: empty for any path, else starting with ``/`` and matched on whole segments: ``/hooks``
  matches ``/hooks`` and ``/hooks/a`` but not ``/hooksevil``. A URL whose path holds ``.`` or ``..``
  segments (raw, percent-encoded any number of times, after a backslash, or as ``..;param``) never
  matches an entry with a path prefix, since the receiver may resolve them to a path outside it.

Reading a tenant's entries, and the send-time cache, live in callbacks.whitelist.
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from callbacks.domain.hosts import normalise_host
from callbacks.domain.urls import DEFAULT_PORTS
from callbacks.errors import ApplicationError

SCHEMES = ("", "http", "https")
MAX_PATH_PREFIX = 500
# Rounds of percent-decoding a path's dot segments are looked for in; a path still encoded after them
# is taken for one.
_DECODINGS = 5


@dataclass(frozen=True)
class Pattern:
    """A validated, normalised entry; also what the send-time cache keeps (no model instances)."""

    host: str
    scheme: str = ""
    port: int | None = None
    path_prefix: str = ""


# --- validating patterns ------------------------------------------------------------------------


def validate_pattern(host, scheme="", port=None, path_prefix="") -> Pattern:
    """The entry's fields, checked and normalised. Raises ApplicationError naming each bad field."""
    errors: dict[str, list[str]] = {}
    clean_host = _clean(errors, "host", _host_pattern, host)
    clean_scheme = _clean(errors, "scheme", _scheme, scheme)
    clean_port = _clean(errors, "port", _port, port)
    clean_prefix = _clean(errors, "path_prefix", _path_prefix, path_prefix)
    if errors:
        raise ApplicationError("Invalid whitelist entry.", fields=errors)
    return Pattern(host=clean_host, scheme=clean_scheme, port=clean_port, path_prefix=clean_prefix)


def _clean(errors: dict, field: str, check, value):
    try:
        return check(value)
    except ValueError as exc:
        errors[field] = [str(exc)]
        return None


def _host_pattern(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a host is required: a name, an IP address or *.suffix")
    value = value.strip()
    if value.startswith("*."):
        suffix = value[2:]
        if "*" in suffix:
            raise ValueError("only one leading '*.' is allowed")
        if _ip_literal(suffix) is not None:
            raise ValueError("a wildcard cannot stand before an IP address")
        return "*." + normalise_name(suffix)
    if "*" in value:
        raise ValueError("a wildcard is only allowed as a leading '*.' (e.g. *.example.com)")
    address = _ip_literal(value)
    if address is not None:
        return address
    return normalise_name(value)


def normalise_name(name: str) -> str:
    """A host name as callbacks.domain.hosts normalises it; ValueError when it is not one."""
    name = name.strip()
    if not name or "/" in name or ":" in name or any(ch.isspace() for ch in name):
        raise ValueError("not a valid host name (give the host alone, without scheme, port or path)")
    return normalise_host(name)


def _ip_literal(value: str) -> str | None:
    """The canonical text of an IP literal (IPv6 with or without brackets), else None."""
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _scheme(value) -> str:
    value = "" if value is None else value
    if not isinstance(value, str) or value.strip().lower() not in SCHEMES:
        raise ValueError("must be http, https or empty (both)")
    return value.strip().lower()


def _port(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be a whole number from 1 to 65535, or empty for the scheme's default")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            "must be a whole number from 1 to 65535, or empty for the scheme's default"
        ) from None
    if not 1 <= port <= 65535 or str(value).strip() != str(port):
        raise ValueError("must be a whole number from 1 to 65535, or empty for the scheme's default")
    return port


def _path_prefix(value) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ValueError("must be a string starting with /")
    if not value.startswith("/"):
        raise ValueError("must start with / (e.g. /hooks)")
    if len(value) > MAX_PATH_PREFIX:
        raise ValueError(f"at most {MAX_PATH_PREFIX} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ch in "?#" for ch in value):
        raise ValueError("must not contain whitespace, control characters, ? or #")
    if _has_dot_segment(value):
        raise ValueError("must not contain . or .. segments")
    return value


# --- matching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # normalised like a pattern's host
    port: int
    path: str
    dot_segments: bool


def _target(url: str) -> _Target | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = _ip_literal(parts.hostname)
    if host is None:
        try:
            host = normalise_name(parts.hostname)
        except ValueError:
            return None
    path = parts.path or "/"
    return _Target(scheme, host, port or DEFAULT_PORTS[scheme], path, _has_dot_segment(path))


def entry_matches(entry, url: str) -> bool:
    """Whether `url` falls under the entry (a UrlWhitelistEntry or a Pattern); `enabled` is not consulted."""
    target = _target(url)
    return target is not None and _matches(as_pattern(entry), target)


def _matches(pattern: Pattern, target: _Target) -> bool:
    return (
        _host_matches(pattern.host, target.host)
        and (not pattern.scheme or pattern.scheme == target.scheme)
        and _port_matches(pattern, target)
        and _path_matches(pattern.path_prefix, target)
    )


def _host_matches(pattern_host: str, host: str) -> bool:
    if pattern_host.startswith("*."):
        return host.endswith(pattern_host[1:]) and _ip_literal(host) is None
    return host == pattern_host


def _port_matches(pattern: Pattern, target: _Target) -> bool:
    if pattern.port is not None:
        return pattern.port == target.port
    # No port: the scheme's default, for the scheme the URL uses (the entry may allow both schemes).
    return target.port == DEFAULT_PORTS[target.scheme]


def _path_matches(prefix: str, target: _Target) -> bool:
    if not prefix:
        return True
    if target.dot_segments:
        return False
    path = target.path
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def _has_dot_segment(path: str) -> bool:
    """Whether some server may read a segment of `path` as . or ..: percent-encoded any number of times
    (%252e is %2e once decoded, which some servers decode again), after a backslash (read as a slash),
    with ;parameters (Tomcat and Spring read "..;x" as ".."), or dots with trailing blanks or NULs
    (Windows drops them)."""
    decoded = path
    for _ in range(_DECODINGS):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    else:
        return True  # still encoded after that many rounds: no receiver means that
    for segment in re.split(r"[/\\]", decoded):
        core = segment.split(";", 1)[0].rstrip(" \t\x00")
        if core and not core.strip("."):
            return True
    return False


def as_pattern(entry) -> Pattern:
    if isinstance(entry, Pattern):
        return entry
    return Pattern(
        host=entry.host, scheme=entry.scheme or "", port=entry.port, path_prefix=entry.path_prefix or ""
    )


def denial_reason(patterns, url: str) -> str | None:
    """None when one of `patterns` allows `url`, else a readable reason for the refusal."""
    target = _target(url)
    if target is None:
        return "the URL cannot be checked against the whitelist"
    if any(_matches(pattern, target) for pattern in patterns):
        return None
    if not patterns:
        return "the tenant enforces its URL whitelist and it has no enabled entries"
    same_host = [pattern for pattern in patterns if _host_matches(pattern.host, target.host)]
    if not same_host:
        return f"host {target.host} is not on the tenant's URL whitelist"
    return (
        f"{target.scheme}://{target.host}:{target.port}{target.path} is outside the whitelist entries for "
        f"{target.host} (scheme, port or path prefix differ; no port in an entry means the scheme's default)"
    )
