"""Per-tenant URL whitelists as the tenant's rows hold them: which targets a tenant that enforces its
whitelist may call. The patterns themselves (what a valid entry is, what it matches) are
callbacks.domain.whitelist's.

The check runs when a task is registered and again before every attempt (the list may have changed):
``send_time_denial`` reads each tenant's enabled entries through a small per-process cache, so a change
takes effect within ``WHITELIST_CACHE_SECONDS`` without a query per callback.
"""

import threading
import time

from django.conf import settings
from django.db import connection

from callbacks.domain.whitelist import Pattern, as_pattern, denial_reason

DEFAULT_CACHE_SECONDS = 5.0


# --- the tenant's list ------------------------------------------------------------------------


def enabled_patterns(tenant) -> tuple[Pattern, ...]:
    """The tenant's enabled entries, read from the database now."""
    entries = tenant.whitelist.filter(enabled=True).only("host", "scheme", "port", "path_prefix")
    return tuple(as_pattern(entry) for entry in entries)


def url_allowed(*, tenant, url: str) -> bool:
    """Whether the tenant's enabled entries allow `url` (whether the tenant enforces them is not asked)."""
    return denial_reason(enabled_patterns(tenant), url) is None


def creation_denial(*, tenant, urls: list[str]) -> dict[int, str]:
    """Index -> reason for each URL the tenant may not register; {} when it does not enforce a whitelist."""
    if not tenant.enforce_whitelist:
        return {}
    patterns = enabled_patterns(tenant)
    reasons = {index: denial_reason(patterns, url) for index, url in enumerate(urls)}
    return {index: reason for index, reason in reasons.items() if reason is not None}


# --- send time --------------------------------------------------------------------------------

_cache: dict = {}  # tenant id -> (fresh until, on the monotonic clock; patterns)
_cache_lock = threading.Lock()
_cache_changed = threading.Condition(_cache_lock)
_refreshing: set = set()  # tenant ids being read right now
# How long a sender waits for another thread's read before reading itself.
_REFRESH_WAIT_SECONDS = 5.0


def cached_patterns(tenant) -> tuple[Pattern, ...]:
    """The tenant's enabled entries, read at most about once per WHITELIST_CACHE_SECONDS in this process.

    Sender threads call this. Once a tenant's entries are stale, one thread reads them and the others
    wait for that read rather than queue on the database or go on with the stale list, which could
    still allow a target removed meanwhile. A thread that had no database connection closes the one
    it opened, so hundreds of sender threads never hold hundreds of connections.
    """
    with _cache_changed:
        deadline = time.monotonic() + _REFRESH_WAIT_SECONDS
        while True:
            cached = _cache.get(tenant.pk)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            if tenant.pk not in _refreshing or time.monotonic() > deadline:
                break
            _cache_changed.wait(max(0.0, deadline - time.monotonic()))
        _refreshing.add(tenant.pk)
    patterns = None
    try:
        patterns = _read_closing_new_connection(tenant)
        return patterns
    finally:
        ttl = settings.CALLBACKS.get("WHITELIST_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)
        with _cache_changed:  # store and release together: waiters wake to fresh entries
            if patterns is not None:
                _cache[tenant.pk] = (time.monotonic() + ttl, patterns)
            _refreshing.discard(tenant.pk)
            _cache_changed.notify_all()


def _read_closing_new_connection(tenant) -> tuple[Pattern, ...]:
    had_connection = connection.connection is not None
    try:
        return enabled_patterns(tenant)
    finally:
        if not had_connection and not connection.in_atomic_block:
            connection.close()


def forget(tenant_id=None) -> None:
    """Drop cached entries (one tenant's, or all): this process sees a change at once, others within the TTL."""
    with _cache_lock:
        if tenant_id is None:
            _cache.clear()
        else:
            _cache.pop(tenant_id, None)


def send_time_denial(task) -> str | None:
    """Why `task` (tenant loaded) may not be sent now under its tenant's whitelist, or None."""
    tenant = task.tenant
    if not tenant.enforce_whitelist:
        return None
    reason = denial_reason(cached_patterns(tenant), task.url)
    return f"whitelist denied: {reason}" if reason else None
