"""Every bound of the service, stated once: the environment (taskcenter.env), the run-time settings
(callbacks.conf), the API, the tenant policy and the admin forms all check numbers against this table,
with the one cleaner `Bound.clean`.

Pure Python on purpose: taskcenter/settings.py imports it before Django is set up.
"""

import math
from dataclasses import dataclass

DAY = 86400


@dataclass(frozen=True)
class Bound:
    """A number setting's kind and range; None on a side means no limit there."""

    kind: type  # int or float
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def clean(self, value) -> int | float:
        """The value as a number of this kind, or ValueError saying what is wrong. Text is read as a
        number (environment variables, form fields); 5.0 is a whole number, True is not a number."""
        number = self._number(value)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise ValueError(self.range_text())
        return number

    def range_text(self) -> str:
        if self.maximum is None:
            return f"must be at least {self.minimum:g}"
        if self.minimum is None:
            return f"must be at most {self.maximum:g}"
        return f"must be between {self.minimum:g} and {self.maximum:g}"

    def _number(self, value) -> int | float:
        wrong = ValueError("must be a whole number" if self.kind is int else "must be a number")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except ValueError:
            raise wrong from None
        if not math.isfinite(number):
            raise ValueError("must be a number")
        if self.kind is float:
            return number
        if isinstance(value, int):
            return value
        if not number.is_integer():
            raise wrong
        return int(number)


# --- settings.CALLBACKS and the run-time settings: one entry per key ---------------------------------
# A tenant's policy and a task's own values are bounded by the entry of the setting they override.
SETTINGS = {
    "POOL_MAXSIZE_PER_HOST": Bound(int, 1, 1000, "connections kept per target host"),
    "POOL_HOSTS": Bound(int, 1, 10000, "target hosts whose pools are kept"),
    # A connect phase longer than a minute is a dead host; an attempt longer than 15 minutes would hold a
    # worker slot (and a lease) for what no receiver should need.
    "CONNECT_TIMEOUT": Bound(float, 0.1, 60, "default connect timeout, seconds"),
    "TOTAL_TIMEOUT": Bound(float, 0.1, 900, "default whole-request deadline, seconds"),
    "KEEPALIVE_IDLE_SECONDS": Bound(float, 1, None, "idle connections older than this are not reused"),
    "RESPONSE_BODY_LIMIT": Bound(int, 0, None, "response bytes kept per attempt"),
    # Every response's head is read whole before its body, so this bounds what a receiver can make a
    # worker read and store for one attempt; 1 KiB still holds a status line and the common headers.
    "RESPONSE_HEADERS_LIMIT": Bound(
        int, 1024, 1024 * 1024, "response header bytes read and kept per attempt"
    ),
    "REQUEST_BODY_LIMIT": Bound(int, 1, None, "largest request body a tenant may register, bytes"),
    # Twenty retries at the longest backoff already span weeks.
    "MAX_RETRIES": Bound(int, 0, 20, "default retries after the first attempt"),
    "BACKOFF_INITIAL": Bound(float, 0, 3600, "default first wait, seconds"),
    "BACKOFF_MULTIPLIER": Bound(float, 1, 10, "default backoff growth"),
    "BACKOFF_MAX": Bound(float, 0, DAY, "default longest wait, seconds"),
    "BACKOFF_JITTER": Bound(float, 0, 1, "fraction of the backoff added or removed at random"),
    "RETRY_AFTER_MAX": Bound(float, 0, None, "longest receiver Retry-After honoured, seconds"),
    "CONNECT_RETRIES": Bound(int, 0, 10, "retries inside one attempt before the request was sent"),
    "CONCURRENCY": Bound(int, 1, 5000, "callbacks in flight per worker process"),
    "WORKER_PROCESSES": Bound(int, 1, 64, "django-q2 worker processes"),
    # A claim is one statement; past 1000 rows it holds its locks longer than a step should take.
    "DISPATCH_BATCH": Bound(int, 1, 1000, "tasks per dispatcher claim"),
    "DISPATCH_POLL_SECONDS": Bound(float, 0.01, 10, "dispatcher poll interval without a wake-up, seconds"),
    "DISPATCH_IDLE_SECONDS": Bound(
        float, 0.01, 300, "longest dispatcher sleep with nothing due, when NOTIFY wakes it, seconds"
    ),
    "DISPATCH_MAX_OUTSTANDING": Bound(int, 0, 1000000, "tasks handed out at once (0: automatic)"),
    "TASKS_PER_JOB": Bound(int, 1, 1000, "callbacks per django-q2 task"),
    "STANDBY_POLL_SECONDS": Bound(float, 0.05, 60, "how often a standby dispatcher tries to lead, seconds"),
    # Under 30 s by default so qcluster exits within 30 s; ten minutes at most.
    "SHUTDOWN_GRACE_SECONDS": Bound(float, 0, 600, "how long in-flight callbacks may finish on SIGTERM"),
    "QUEUED_LEASE_SECONDS": Bound(float, 1, None, "a claimed task not started by then is taken back"),
    "RUNNING_LEASE_MARGIN_SECONDS": Bound(float, 1, None, "margin past the total timeout of a running task"),
    "RUNNING_LEASE_SECONDS": Bound(
        float, 2, 600, "a running task its worker stopped renewing comes back after this"
    ),
    "LANE_LEASE_SECONDS": Bound(
        float, 2, 600, "a lane its worker stopped renewing frees its slots after this"
    ),
    "LANE_SECONDS": Bound(float, 0.1, 3600, "how long a lane keeps taking tasks before its slots go back"),
    "LANE_LINGER_SECONDS": Bound(
        float, 0, 60, "how long a lane with nothing due keeps its slots for what its key brings next"
    ),
    "RECORD_FLUSH_SECONDS": Bound(float, 0.001, 5, "finished attempts are written at least this often"),
    "MAX_CONCURRENCY_PER_ORIGIN": Bound(int, 1, 100000, "callbacks in flight per target origin"),
    "RATE_LIMIT_PER_ORIGIN": Bound(float, 0, 100000, "requests per second per origin (0: off)"),
    "BREAKER_FAILURE_THRESHOLD": Bound(int, 1, 1000, "consecutive failures that open a breaker"),
    "BREAKER_OPEN_SECONDS": Bound(float, 1, DAY, "first open period of a breaker, seconds"),
    "BREAKER_OPEN_MAX_SECONDS": Bound(float, 1, 7 * DAY, "longest open period, seconds"),
    "BREAKER_TIMEOUT_FLOOR_SECONDS": Bound(
        float, 0, 60, "timeouts of attempts given less time than this never move a breaker"
    ),
    "SCHEDULES_PER_TENANT": Bound(int, 1, 100000, "schedules one tenant may hold"),
    "SCHEDULE_MIN_INTERVAL_SECONDS": Bound(
        int, 1, DAY, "shortest time between two fires of one schedule, seconds"
    ),
    "BREAKER_MAX_DEFER_SECONDS": Bound(float, 1, None, "tasks held by a breaker longer than this go dead"),
    "WHITELIST_CACHE_SECONDS": Bound(float, 0, 300, "how long a process keeps a tenant's whitelist"),
    "RETENTION_BODY_DAYS": Bound(int, 1, None, "days response bodies are kept"),
    "RETENTION_DAYS": Bound(int, 1, None, "days attempts of finished tasks and roll-ups are kept"),
    "READY_MAX_LAG_SECONDS": Bound(float, 1, None, "due work older than this fails readiness"),
    "READY_HEARTBEAT_SECONDS": Bound(float, 1, None, "processes silent longer than this fail readiness"),
    "HEARTBEAT_SECONDS": Bound(float, 0.1, 300, "how often processes report themselves alive"),
}

# What may change at run time; bounds and help come from the one table. Other settings need a restart
# (they shape processes, not requests).
RUNTIME_KEYS = {
    key: SETTINGS[key]
    for key in (
        "POOL_MAXSIZE_PER_HOST",
        "POOL_HOSTS",
        "CONNECT_TIMEOUT",
        "TOTAL_TIMEOUT",
        "CONCURRENCY",
        "MAX_RETRIES",
        "BACKOFF_INITIAL",
        "BACKOFF_MULTIPLIER",
        "BACKOFF_MAX",
        "MAX_CONCURRENCY_PER_ORIGIN",
        "RATE_LIMIT_PER_ORIGIN",
        "BREAKER_FAILURE_THRESHOLD",
        "BREAKER_OPEN_SECONDS",
        "BREAKER_OPEN_MAX_SECONDS",
        "DISPATCH_BATCH",
        "DISPATCH_MAX_OUTSTANDING",
    )
}


# --- settings outside settings.CALLBACKS --------------------------------------------------------------
# The largest API request read at all; at least 1 KB so that any single callback fits.
API_REQUEST_LIMIT = Bound(int, 1024, None, "largest API request body read, bytes")
WORKER_RECYCLE = Bound(int, 1, None, "batches after which a worker process is replaced")
BROKER_POLL_SECONDS = Bound(float, 0.005, 60, "how often the ORM broker looks for batches unwoken, seconds")
DB_CONN_MAX_AGE = Bound(int, 0, None, "seconds a database connection is kept")
# Browsers keep HSTS for at most about two years; the preload list asks for one year at least.
HSTS_SECONDS = Bound(int, 0, 2 * 365 * DAY, "seconds browsers must use HTTPS only (0: no HSTS)")
NUM_PROXIES = Bound(int, 0, 10, "proxies in front of the web process whose X-Forwarded-For is trusted")

# --- a callback's own fields ------------------------------------------------------------------------
# Priorities run 0..MAX_PRIORITY, higher first; the claim reads each level apart, so the database holds
# every task to this range.
MAX_PRIORITY = 9
PRIORITY = Bound(int, 0, MAX_PRIORITY, "higher is sent first")
# A year: anything later is a schedule's job, not a delayed callback's.
DELAY_SECONDS = Bound(int, 0, 365 * DAY, "seconds from now until the first attempt")
MAX_BATCH = 1000  # callbacks per batch request, registered all or none
MAX_URL_LENGTH = 2000
MAX_HEADERS = 100
# Response header lines read per attempt; Python's http.client refuses a response with more than 100.
MAX_RESPONSE_HEADERS = 90
MAX_HEADER_BYTES = 8 * 1024  # name and value together, as most servers limit one header line
# Nesting deeper than this is no payload anyone means to send, and it would exhaust Python's recursion
# limit while the body is encoded or shown back.
MAX_BODY_DEPTH = 64
MAX_SUCCESS_STATUSES_LENGTH = 200  # the normalised spec, as stored
MAX_LABEL_LENGTH = 200  # business_id, trace_id, idempotency_key, ordering_key

# --- a tenant's signing keys ------------------------------------------------------------------------
# How long the previous secret or key keeps signing beside the new one after a rotation: long enough
# for every receiver to be given the new one, and it ends by itself.
SIGNING_OVERLAP_SECONDS = Bound(int, 0, 30 * DAY, "seconds the previous key keeps signing after a rotation")
DEFAULT_SIGNING_OVERLAP_SECONDS = DAY
