"""API rate limits per tenant: 429 with Retry-After once a tenant's rate is used up.

The rate is the tenant's `api_rate_limit` ("100/s", "3000/min", "50000/h", "0" or "off" for none), else
the installation's CALLBACKS["API_RATE_LIMIT"] (env CALLBACKS_API_RATE_LIMIT). Every API request counts
once, a batch of up to 1000 callbacks included: the limit protects the API from request floods, while
what a batch may hold is bounded by its own size limits and delivery by the per-origin limits.

Counting is a sliding-window counter in the Django cache (Redis when REDIS_URL is set, the file cache of
the embedded set-up otherwise), so every web process shares it: two integer keys per tenant, the current
window and the one before, with the previous window's count weighted by how much of it still overlaps
the sliding window. Unlike DRF's SimpleRateThrottle it keeps no per-request timestamp list (6000
floats read and written per request at the default rate) and it has no double burst at a window edge.
Requests refused are not counted, so a client that honours Retry-After gets in as soon as it is told.
If the cache is down the request is let through (logged): throttling must not take the API down with it.

What is left of the budget is told on every answer to a tenant's request (callbacks.api.middleware):
X-RateLimit-Limit (requests per window), X-RateLimit-Remaining and X-RateLimit-Reset (whole seconds until
the current window ends; on a 429, until one more request fits).

Failed authentication is limited too, per client address: an API key that matches none, or an operator's
wrong password over HTTP Basic. Past CALLBACKS["AUTH_FAILURE_RATE"] failures (env
CALLBACKS_AUTH_FAILURE_RATE, "20/min" by default) every authentication from that address answers 429 with
Retry-After, right or wrong, until its failures fall under the rate again: guessing a key or a password
costs one window per few tries, and a success among the guesses is not told apart from a failure.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from callbacks import conf
from callbacks.domain.rates import Rate, RateError, parse_rate

logger = logging.getLogger(__name__)


def tenant_rate(tenant) -> Rate | None:
    """The rate that applies to the tenant now: its own, else the installation's."""
    own = (tenant.api_rate_limit or "").strip()
    try:
        return parse_rate(own or conf.get("API_RATE_LIMIT"))
    except RateError:
        # Values are checked when set (tenant_update_policy, settings); an odd row must not break the API.
        logger.warning("tenant %s has an unusable api_rate_limit %r; using the default", tenant.pk, own)
        return parse_rate(conf.get("API_RATE_LIMIT"))


@dataclass(frozen=True)
class Budget:
    """A tenant's rate budget once its request is counted (or refused: then `wait` is set)."""

    limit: int
    remaining: int
    reset_seconds: int
    wait: float | None

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class TenantRateThrottle(BaseThrottle):
    """Keyed by the tenant behind the API key, not by key or address: a tenant's keys share one budget."""

    cache_prefix = "throttle:tenant"

    def __init__(self):
        self._wait: float | None = None

    def allow_request(self, request, view):
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            return True  # unauthenticated requests never get this far on tenant views
        rate = tenant_rate(tenant)
        if rate is None:
            return True
        try:
            budget = spend(f"{self.cache_prefix}:{tenant.pk}", rate, now=time.time())
        except Exception:
            logger.warning("API throttling skipped: the cache is unavailable", exc_info=True)
            return True
        # On the Django request, which outlives the view: the middleware puts it in the answer's headers.
        request._request.rate_budget = budget
        self._wait = budget.wait
        return self._wait is None

    def wait(self):
        return self._wait


class AuthFailureGuard:
    """The authentication classes call `check` before they look at credentials and `record` when the
    credentials match no one. Keyed by DRF's client ident: REMOTE_ADDR, or X-Forwarded-For behind
    REST_FRAMEWORK["NUM_PROXIES"] proxies."""

    cache_prefix = "throttle:auth-failures"

    def check(self, request) -> None:
        """Throttled (429) when the client's address has failed too often lately."""
        rate = _failure_rate()
        if rate is None:
            return
        try:
            wait = over_rate(self._key(request), rate, now=time.time())
        except Exception:
            logger.warning("authentication throttling skipped: the cache is unavailable", exc_info=True)
            return
        if wait is not None:
            raise Throttled(wait=wait, detail="Too many failed authentications from this address.")

    def record(self, request) -> None:
        rate = _failure_rate()
        if rate is None:
            return
        index = int(time.time() // rate.seconds)
        try:
            _increment(f"{self._key(request)}:{index}", timeout=2 * rate.seconds + 1)
        except Exception:
            logger.warning("a failed authentication was not counted: the cache is unavailable", exc_info=True)

    def forget(self, ident: str) -> None:
        """Clear an address's failures (an operator unblocking a client; tests)."""
        rate = _failure_rate()
        if rate is not None:
            index = int(time.time() // rate.seconds)
            cache.delete_many(
                [f"{self.cache_prefix}:{ident}:{index}", f"{self.cache_prefix}:{ident}:{index - 1}"]
            )

    def _key(self, request) -> str:
        return f"{self.cache_prefix}:{BaseThrottle().get_ident(request)}"


def _failure_rate() -> Rate | None:
    # An installation setting, not a run-time one: read without a database query.
    return parse_rate(settings.CALLBACKS["AUTH_FAILURE_RATE"])


def over_rate(key: str, rate: Rate, *, now: float) -> float | None:
    """None while the events counted under `key` are within `rate`, else the seconds until one more fits.
    Counts nothing itself."""
    window = rate.seconds
    index = int(now // window)
    elapsed = now - index * window
    current = cache.get(f"{key}:{index}") or 0
    previous = cache.get(f"{key}:{index - 1}") or 0
    # The previous window's share rounded up: failures are counted whole, so a run of them split by a
    # window's edge is refused as soon as one that stays within a window.
    if math.ceil(previous * (window - elapsed) / window) + current < rate.requests:
        return None
    return _wait_seconds(rate, previous=previous, current=current, elapsed=elapsed)


def consume(key: str, rate: Rate, *, now: float) -> float | None:
    """Count one request under `key`; None when allowed, else the seconds to wait (request not counted)."""
    return spend(key, rate, now=now).wait


def spend(key: str, rate: Rate, *, now: float) -> Budget:
    """Count one request under `key` and say what is left; a refused request is not counted."""
    window = rate.seconds
    index = int(now // window)
    elapsed = now - index * window
    current_key, previous_key = f"{key}:{index}", f"{key}:{index - 1}"
    current = _increment(current_key, timeout=2 * window + 1)
    previous = cache.get(previous_key) or 0
    weight = (window - elapsed) / window
    used = previous * weight + current
    until_next = math.ceil(window - elapsed)
    if used <= rate.requests:
        remaining = max(0, math.floor(rate.requests - used))
        return Budget(limit=rate.requests, remaining=remaining, reset_seconds=until_next, wait=None)
    cache.decr(current_key)
    wait = _wait_seconds(rate, previous=previous, current=current - 1, elapsed=elapsed)
    return Budget(limit=rate.requests, remaining=0, reset_seconds=math.ceil(wait), wait=wait)


def _increment(key: str, *, timeout: int) -> int:
    """The key's count plus one; a new key lives `timeout` seconds (the current window, then the previous)."""
    try:
        return cache.incr(key)
    except ValueError:  # no such key yet: the window's first request
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)  # another process added it meanwhile


def _wait_seconds(rate: Rate, *, previous: int, current: int, elapsed: float) -> float:
    """How long until one more request fits: the previous window's weight shrinks as time goes on."""
    window, limit = rate.seconds, rate.requests
    room = limit - 1 - current  # requests of the previous window that may still overlap
    if room >= 0 and previous > 0:
        # previous * (window - elapsed - t) / window <= room
        wait = window - elapsed - room * window / previous
        if wait <= window - elapsed:
            return max(wait, 0.001)
    # Not within this window: at the next one, this window's count becomes the weighted one.
    until_next = window - elapsed
    if current <= limit - 1:
        return until_next
    return until_next + window * (1 - (limit - 1) / current)
