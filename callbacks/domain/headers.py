"""Which request headers a caller may set, checked when a task is registered and again when sent.

Refused: hop-by-hop headers (they describe one connection, not the message), the headers the HTTP client
computes itself (Host, Content-Length), the headers this service sets on every callback, so a caller can
neither forge a signature nor confuse a receiver with two values, and the installation's own deny list:
settings.CALLBACKS["DENIED_HEADERS"] (env CALLBACKS_DENIED_HEADERS, comma-separated names; a name ending in
"*" denies every header starting with what comes before it, e.g. "X-Internal-*"). The deny list is read at
call time; a task registered before a name was denied has that header dropped when it is sent.
"""

import functools
import re

from django.conf import settings

from callbacks.domain.bounds import MAX_HEADER_BYTES, MAX_HEADERS

HOP_BY_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)
COMPUTED_HEADERS = frozenset({"host", "content-length"})
# Set by the sender on every callback (signing, tracing, business ids); X-Callback-* is reserved as a prefix.
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "traceparent", "x-business-id", "x-trace-id"}
)
RESERVED_PREFIX = "x-callback-"
FORBIDDEN_HEADERS = HOP_BY_HOP_HEADERS | COMPUTED_HEADERS | RESERVED_HEADERS


# RFC 7230 section 3.2.6: token = 1*tchar.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Control characters other than horizontal tab: CR and LF would split the header (response splitting), NUL and
# the others are refused by servers. Characters beyond Latin-1 cannot be sent in a header at all.
_ILLEGAL_VALUE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


class HeaderError(ValueError):
    """Invalid headers; `errors` maps each offending header name (or "headers") to its reasons."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in errors.items()))
        self.errors = errors


def forbidden_reason(name: str) -> str | None:
    """Why a header name may not be set by a caller, or None when it may."""
    lowered = name.lower()
    if lowered in HOP_BY_HOP_HEADERS:
        return "hop-by-hop header, refused"
    if lowered in COMPUTED_HEADERS:
        return "set by the HTTP client itself, refused"
    if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIX):
        return "set by the callback service itself, refused"
    if _configured_denial(lowered):
        return "denied by this installation's header policy (CALLBACKS_DENIED_HEADERS), refused"
    return None


def _configured_denial(lowered: str) -> bool:
    configured = getattr(settings, "CALLBACKS", {}).get("DENIED_HEADERS") or ()
    names, prefixes = _deny_list(tuple(configured) if isinstance(configured, list) else configured)
    return lowered in names or lowered.startswith(prefixes)


@functools.lru_cache(maxsize=8)
def _deny_list(configured) -> tuple[frozenset, tuple]:
    """(exact names, prefixes), lower-cased; cached on the setting's value."""
    if isinstance(configured, str):
        configured = configured.split(",")
    entries = [entry.strip().lower() for entry in configured if entry.strip()]
    names = frozenset(entry for entry in entries if not entry.endswith("*"))
    prefixes = tuple(entry[:-1] for entry in entries if entry.endswith("*") and len(entry) > 1)
    return names, prefixes


def validate_headers(headers) -> dict[str, str]:
    """The caller's headers, checked and cleaned (values stripped); raises HeaderError."""
    if not isinstance(headers, dict):
        raise HeaderError({"headers": ["must be an object of header names to string values"]})
    if len(headers) > MAX_HEADERS:
        raise HeaderError({"headers": [f"at most {MAX_HEADERS} headers"]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        reasons = _name_problems(name, seen) + _value_problems(name, value)
        if reasons:
            errors[_error_key(name)] = reasons
        else:
            # Leading and trailing whitespace is not part of a field value (RFC 7230 OWS).
            cleaned[name] = value.strip(" \t")
        seen.add(name.lower())
    if errors:
        raise HeaderError(errors)
    return cleaned


def _error_key(name) -> str:
    """The header name as the error names it: text that can be sent back. A name that is not text, or holds
    a lone surrogate (valid JSON, no valid UTF-8), is named by its escaped spelling."""
    if not isinstance(name, str):
        return repr(name)
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _name_problems(name: str, seen: set[str]) -> list[str]:
    if not _TOKEN.match(name):
        return ["not a legal header name (RFC 7230 token characters only)"]
    if name.lower() in seen:
        return ["repeated (header names are case-insensitive)"]
    reason = forbidden_reason(name)
    return [reason] if reason else []


def _value_problems(name: str, value) -> list[str]:
    if not isinstance(value, str):
        return ["the value must be a string"]
    problems = []
    if _ILLEGAL_VALUE_CHARS.search(value):
        problems.append(
            "the value contains CR, LF, NUL, another control character or a non-Latin-1 character"
        )
    if len(name) + len(value) > MAX_HEADER_BYTES:
        problems.append(f"name and value together exceed {MAX_HEADER_BYTES} bytes")
    return problems
