"""How attempts are grouped: status classes, target hosts, error classes.

Imported by the logging config before apps load: no models here (outcomes are callbacks.models.Outcome values).
"""

from functools import lru_cache
from urllib.parse import urlsplit

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "none")

# The error distribution of the stats: each failed outcome's class ("network" is a refused or broken connection).
ERROR_CLASSES = {
    "connection": "network",
    "timeout": "timeout",
    "http_4xx": "4xx",
    "http_5xx": "5xx",
    "http_3xx": "3xx",
    "http_unexpected": "unexpected_status",
    "tls": "tls",
    "ssrf_blocked": "ssrf_blocked",
    "whitelist_denied": "whitelist_denied",
    "too_large": "too_large",
    "interrupted": "interrupted",
    "error": "internal",
}


def status_class(status_code: int | None) -> str:
    if not status_code:
        return "none"
    return f"{status_code // 100}xx" if 100 <= status_code <= 599 else "none"


def error_class(outcome: str) -> str:
    return ERROR_CLASSES.get(outcome, "other")


@lru_cache(maxsize=4096)
def host_of(origin: str) -> str:
    """The target host of an origin ("https://api.example.com:443" -> "api.example.com")."""
    try:
        return (urlsplit(origin).hostname or origin)[:255]
    except ValueError:
        return origin[:255]
