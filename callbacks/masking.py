"""Secret masking for stored request snapshots, API output, the admin and logs (R29).

Secrets are still sent to the receiver; only what we keep and show is masked.
"""

import re

MASK = "********"

# Header names whose values are secrets, matched case-insensitively as whole names.
SECRET_HEADER_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
# Any header whose name contains one of these words is treated as secret too.
SECRET_NAME_PATTERN = re.compile(r"(secret|token|password|passwd|api[-_]?key|signature|credential)", re.I)

# Secrets that appear inside free text (log lines, error messages): bearer tokens, our own keys.
_TEXT_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(r"()\btc_[A-Za-z0-9_-]{8,}"),
    re.compile(r"()\bwhsec_[A-Za-z0-9+/=]{8,}"),
]


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADER_NAMES or bool(SECRET_NAME_PATTERN.search(lowered))


def mask_headers(headers: dict) -> dict:
    return {name: (MASK if is_secret_header(name) else value) for name, value in (headers or {}).items()}


def mask_text(text: str) -> str:
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
