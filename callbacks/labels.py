"""How attempts are grouped: status classes, target hosts, error classes.

Imported by the logging config before apps load: no models here, only the vocabulary.
"""

from functools import lru_cache
from urllib.parse import urlsplit

from callbacks.domain.vocabulary import Outcome

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "none")

# The error distribution of the stats: each failed outcome's class ("network" is a refused or broken connection).
ERROR_CLASSES = {
    Outcome.CONNECTION: "network",
    Outcome.TIMEOUT: "timeout",
    Outcome.HTTP_4XX: "4xx",
    Outcome.HTTP_5XX: "5xx",
    Outcome.HTTP_3XX: "3xx",
    Outcome.HTTP_UNEXPECTED: "unexpected_status",
    Outcome.TLS: "tls",
    Outcome.SSRF_BLOCKED: "ssrf_blocked",
    Outcome.WHITELIST_DENIED: "whitelist_denied",
    Outcome.TOO_LARGE: "too_large",
    Outcome.GONE: "gone",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.ERROR: "internal",
}


# A task's queue as a metric label: only the queues an operator runs are named, the rest counted as one.
OTHER_QUEUE = "other"


def queue_label(queue: str, operator_queues) -> str:
    """The queue's name when it is one of `operator_queues`, else OTHER_QUEUE. Label values must come
    from operators: a name a tenant wrote would add series at will, and show on the unauthenticated
    /metrics page what that tenant calls its queues."""
    return queue if queue in operator_queues else OTHER_QUEUE


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
