"""The delivery settings, read in one place: settings.CALLBACKS, overridden at run time.

Operators change the keys in RUNTIME_KEYS through the admin or the API; every process picks the
change up within REFRESH_SECONDS without a restart. Overrides live in the RuntimeSetting table
and are cached per process, so `get()` stays a dictionary lookup on the hot path.

Only threads that may use the database refresh the cache: a worker's HTTP threads never open a
database connection of their own (the recorder thread refreshes for them, see
`refresh_if_stale`).
"""

import logging
import threading
import time

from django.conf import settings

from callbacks.domain.bounds import RUNTIME_KEYS
from callbacks.models import RuntimeSetting

logger = logging.getLogger(__name__)

# How long a process keeps run-time overrides before it reads them again.
REFRESH_SECONDS = 5.0


class _Overrides:
    def __init__(self):
        self.values: dict = {}
        self.loaded_at = float("-inf")
        self.lock = threading.Lock()


_overrides = _Overrides()


def get(key: str):
    if time.monotonic() - _overrides.loaded_at > REFRESH_SECONDS and _may_use_database():
        refresh()
    value = _overrides.values.get(key)
    return settings.CALLBACKS[key] if value is None else value


def current(key: str):
    """The value in force this instant, read from the database rather than the cache: for the few
    decisions that must follow a change at once (how many slots an origin has), not for the hot path."""
    value = RuntimeSetting.objects.filter(key=key).values_list("value", flat=True).first()
    if value is not None:
        try:
            return RUNTIME_KEYS[key].clean(value)
        except ValueError:
            logger.warning("ignoring run-time setting %s=%r: out of bounds", key, value)
    return settings.CALLBACKS[key]


def refresh() -> None:
    """Read the overrides now (the admin and API call this after a change, tests too)."""
    with _overrides.lock:
        try:
            rows = dict(RuntimeSetting.objects.values_list("key", "value"))
        except Exception:  # DatabaseError, or a process (or test) where the database is off-limits
            # No table yet (before migrate) or the database is away: keep what we had and
            # try again after REFRESH_SECONDS rather than on every call.
            logger.debug("run-time settings unavailable; keeping the previous ones", exc_info=True)
            _overrides.loaded_at = time.monotonic()
            return
        values = {}
        for key, value in rows.items():
            spec = RUNTIME_KEYS.get(key)
            if spec is None:
                continue
            try:
                values[key] = spec.clean(value)
            except ValueError:
                logger.warning("ignoring run-time setting %s=%r: out of bounds", key, value)
        _overrides.values = values
        _overrides.loaded_at = time.monotonic()


def refresh_if_stale() -> None:
    """For threads that own a database connection on behalf of others (a worker's recorder)."""
    if time.monotonic() - _overrides.loaded_at > REFRESH_SECONDS:
        refresh()


_thread = threading.local()


def forbid_database_in_this_thread() -> None:
    """For a worker's HTTP threads: they must not open database connections of their own
    (hundreds of threads would mean hundreds of connections); the recorder refreshes for them."""
    _thread.no_database = True


def _may_use_database() -> bool:
    return not getattr(_thread, "no_database", False)


def reset_cache() -> None:
    """Forget overrides and do not look again for REFRESH_SECONDS (test isolation)."""
    with _overrides.lock:
        _overrides.values = {}
        _overrides.loaded_at = time.monotonic()
