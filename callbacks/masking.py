"""Secret masking for stored request snapshots, API output, the admin and logs.

Secrets are still sent to the receiver; only what we keep and show is masked.

Which header names are secret: the fixed names below, any name containing one of the secret words, and the
regular expressions of settings.CALLBACKS["SECRET_HEADER_PATTERNS"] (env CALLBACKS_SECRET_HEADER_PATTERNS,
comma-separated), matched case-insensitively against the whole name. The setting is read at call time, so
a change applies at once; its compiled form is cached, keyed on the setting's value.

Secrets inside URLs are masked too wherever a URL is recorded or logged (execution snapshots, error texts,
log lines): the password of the user info, and the values of query parameters whose names look secret
(token, access_token, api_key, key, secret, password, signature, sig, auth, code ...). A task's own URL is
kept as given, since it must be sent as given.
"""

import functools
import re

from django.conf import settings

MASK = "********"

# Header names whose values are secrets, matched case-insensitively as whole names.
SECRET_HEADER_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
# Kinds of keys that are credentials, as names spell them: Azure Functions' x-functions-key, API Management's
# Ocp-Apim-Subscription-Key, X-Access-Key, Private-Key, an access_key query parameter. A bare "key" inside a
# longer name is not enough (Idempotency-Key is no secret).
_SECRET_KEYS = r"(?:api|access|private|subscription|functions|secret|master|account)[-_]?key"
# Any header whose name contains one of these words is treated as secret too.
SECRET_NAME_PATTERN = re.compile(rf"(secret|token|password|passwd|{_SECRET_KEYS}|signature|credential)", re.I)

# Query parameters whose values are secrets, in URLs found inside text.
_QUERY_SECRET = re.compile(
    rf"(?i)([?&;](?:[a-z0-9_.-]*(?:token|secret|password|passwd|pwd|{_SECRET_KEYS}|apikey|signature|credential)"
    r"[a-z0-9_.-]*|key|sig|auth|code)=)[^&#;\s\"'<>]+"
)

# Secrets that appear inside free text (log lines, error messages): bearer tokens, our own keys.
_TEXT_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(r"()\btc_[A-Za-z0-9_-]{8,}"),
    re.compile(r"()\bwhsec_[A-Za-z0-9+/=]{8,}"),
    # A PEM private key (a tenant's client key pasted where it should not be): its body, to its end.
    re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)"),
    _QUERY_SECRET,
]


def is_secret_header(name: str) -> bool:
    patterns = _setting("SECRET_HEADER_PATTERNS")
    return _is_secret_name(name, tuple(patterns) if isinstance(patterns, list) else patterns)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str, patterns) -> bool:
    # Every attempt masks the same few header names, request and response: decided once per
    # name and setting value.
    lowered = name.lower()
    if lowered in SECRET_HEADER_NAMES or SECRET_NAME_PATTERN.search(lowered):
        return True
    configured = _configured_patterns(patterns)
    return configured is not None and bool(configured.fullmatch(lowered))


def mask_headers(headers: dict) -> dict:
    return {name: (MASK if is_secret_header(name) else value) for name, value in (headers or {}).items()}


def mask_text(text: str) -> str:
    if not text:
        return text
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def mask_data(value):
    """A JSON-like value with secrets masked, for audit rows and other records of arbitrary shape: a value
    under a secret-looking key or header name is replaced, every string has mask_text applied."""
    if isinstance(value, dict):
        return {
            key: (MASK if isinstance(key, str) and is_secret_header(key) and item else mask_data(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_data(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _setting(key: str):
    # Read straight from settings: logging filters call this, possibly before the apps are ready.
    return getattr(settings, "CALLBACKS", {}).get(key) if settings.configured else None


@functools.lru_cache(maxsize=8)
def _configured_patterns(patterns) -> re.Pattern | None:
    """One compiled alternation of the configured name patterns; cached on the setting's value."""
    if not patterns:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)
