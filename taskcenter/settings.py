"""Settings, read from the environment (docs/configuration.md lists every variable).

Bad values stop start-up with a message naming the variable (taskcenter.env). Defaults are
the embedded set-up: SQLite under var/ and the django-q2 ORM broker.
"""

from pathlib import Path

import dj_database_url

from callbacks.domain import bounds
from taskcenter.bootstrap import database_url, secret_key_path, var_dir
from taskcenter.env import (
    ConfigError,
    env_bool,
    env_choice,
    env_fernet_keys,
    env_list,
    env_networks,
    env_number,
    env_proxy_ssl_header,
    env_rate,
    env_regexes,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Created, with PROMETHEUS_MULTIPROC_DIR and var/secret_key, by taskcenter.bootstrap.prepare(),
# which each entry point calls first: importing the settings writes nothing.
VAR_DIR = var_dir()


def _secret_key() -> str:
    """SECRET_KEY (or SECRET_KEY_FILE) from the environment, else the one generated once under var/
    (bootstrap).

    Every process of one installation must share it: django-q2 signs broker payloads with it,
    so processes started by hand (runserver, run_dispatcher, qcluster) agree without set-up.
    """
    key = env_secret("SECRET_KEY", "")
    if key:
        return key
    path = secret_key_path()
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"SECRET_KEY is not set and {path} does not exist: start through manage.py or "
            "taskcenter.wsgi / taskcenter.asgi (they create it), or set SECRET_KEY"
        ) from None
    except OSError as exc:  # pragma: no cover - unreadable var dir
        raise ConfigError(f"SECRET_KEY is not set and {path} cannot be read: {exc}") from exc
    if not key:
        raise ConfigError(f"SECRET_KEY is not set and {path} is empty: delete it or set SECRET_KEY")
    return key


def _strong(key: str) -> str:
    """The key, if Django's deployment check (security.W009) would pass it: at least 50 characters, 5 of
    them different, not Django's placeholder. A weak key lets signed values (sessions, password reset
    links, the broker's payloads, the sealing key derived from it) be forged, so it stops start-up."""
    if len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-"):
        raise ConfigError(
            f"SECRET_KEY is too weak ({len(key)} characters, {len(set(key))} different): use at least 50 "
            "random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return key


SECRET_KEY = _strong(_secret_key())
# Keys sealing the private keys held for tenants (callbacks.sealing): the first seals, all open.
CALLBACKS_ENCRYPTION_KEYS = env_fernet_keys("CALLBACKS_ENCRYPTION_KEYS")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# /demo/echo/, a receiver inside the service for the README's first callback (make run only).
DEMO_ENDPOINTS = env_bool("CALLBACKS_DEMO_ENDPOINTS", False)

# --- Behind TLS (docs/install.md). All off by default: the embedded set-up serves plain HTTP on
# 127.0.0.1, and a redirect to HTTPS or a secure-only cookie there would lock the operator out.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers' probes and Prometheus reach a web process directly over plain HTTP, not
# through the proxy: a redirect would fail them. (Paths without their leading slash.)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz", r"^metrics$"]
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 0, bounds.HSTS_SECONDS)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)

# Who may read /metrics and the details of /readyz (monitoring.access): a bearer token, peers in
# these networks, or, with neither set, anyone (the embedded set-up). Queue names and process
# names are the installation's inner workings; a load balancer needs only /readyz's status code.
MONITORING_TOKEN = env_secret("MONITORING_TOKEN", "")
if MONITORING_TOKEN and len(MONITORING_TOKEN) < 16:
    raise ConfigError(
        "MONITORING_TOKEN must be at least 16 characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
MONITORING_ALLOWED_NETWORKS = env_networks("MONITORING_ALLOWED_NETWORKS")

INSTALLED_APPS = [
    "taskcenter.admin.ConsoleAdminConfig",  # django.contrib.admin with the console's app order
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django_q: our `qcluster` command (graceful shutdown) takes the place of django-q2's.
    "callbacks",
    "monitoring",
    "portal",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs' JavaScript served by us, not from a CDN
    "django_q",
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Paths with or without their slash, declared query parameters only, X-RateLimit-* headers.
    "callbacks.api.middleware.ApiMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "taskcenter.urls"
WSGI_APPLICATION = "taskcenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = database_url()
try:
    # Persistent connections: the django-q2 ORM broker and our workers make many short queries;
    # a new PostgreSQL connection for each costs more than the query.
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_number("DB_CONN_MAX_AGE", 600, bounds.DB_CONN_MAX_AGE),
        conn_health_checks=True,
    )
except Exception as exc:  # dj_database_url raises several types for a bad URL
    # Without the URL itself: it holds the database's password.
    raise ConfigError(f"DATABASE_URL is not a database URL: {exc}") from None
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"
IS_SQLITE = _db["ENGINE"] == "django.db.backends.sqlite3"
if not (IS_POSTGRES or IS_SQLITE):
    raise ConfigError("DATABASE_URL must name a PostgreSQL (postgres://) or SQLite (sqlite://) database")
if IS_SQLITE:
    # Web, dispatcher and workers write at once: WAL lets readers go on during a write,
    # IMMEDIATE takes the write lock up front so a transaction never fails half-way with
    # "database is locked", and the timeout makes writers queue instead of erroring.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if IS_POSTGRES:
    # psycopg prepares a statement on the server where the code asks for it (bulk's
    # prepare=True: the lane refill, whose planning took longer than its execution) and,
    # by this count of executions, never on its own: a generic plan PostgreSQL chose for
    # another statement (the flush's UPDATE ... FROM unnest) ran several times slower than a
    # fresh plan. Django's own cursors bind client-side and never prepare. Off for a pooler in
    # transaction mode that does not carry prepared statements (PgBouncer before 1.21).
    _db.setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 2**31 - 1 if env_bool("DB_PREPARED_STATEMENTS", True) else None
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttling, stats caching). Redis when REDIS_URL is set. ------------------------
REDIS_URL = env_secret("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by every process of the embedded set-up, so API throttling holds across them.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates and times with seconds and the zone everywhere the console shows one.
FORMAT_MODULE_PATH = ["taskcenter.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # whitenoise warns about a missing one: bootstrap creates it
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets from the app directories without a collectstatic step (make run, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["callbacks.api.auth.TenantApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["callbacks.api.auth.IsTenant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Refuses a body over the limit by its Content-Length, before reading it (DRF's own JSON
    # parser ignores DATA_UPLOAD_MAX_MEMORY_SIZE).
    "DEFAULT_PARSER_CLASSES": ["callbacks.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "callbacks.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per-tenant rate limits, so one busy tenant cannot starve the others (CALLBACKS["API_RATE_LIMIT"],
    # Tenant.api_rate_limit); 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": ["callbacks.api.throttling.TenantRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {},
    # Which address a client is counted by (failed authentications): REMOTE_ADDR unless proxies are
    # declared. DRF's default (None) takes X-Forwarded-For as sent, which a client writes as it likes.
    "NUM_PROXIES": env_number("CALLBACKS_NUM_PROXIES", 0, bounds.NUM_PROXIES),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Task Center callbacks API",
    "DESCRIPTION": "Register HTTP callbacks to be delivered now, at a time, or on a cron schedule.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The docs pages load nothing from outside the service (no validator badge, no fonts: callbacks/api/docs.py).
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "deepLinking": True, "persistAuthorization": True},
    # Operations in the order of the URLs (list, batch, one, its attempts ...), not alphabetical.
    "SORT_OPERATIONS": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "callbacks.api.schema.describe_api",  # the description, tags in order, rate-limit headers
    ],
    # One name for the task status choices, used by tasks, filters and events alike.
    "ENUM_NAME_OVERRIDES": {"TaskStatusEnum": "callbacks.models.TaskStatus"},
}

# --- Delivery ----------------------------------------------------------------------------


def _setting(key: str, default):
    """CALLBACKS[key] from the environment variable CALLBACKS_<key>, within its bound."""
    return env_number(f"CALLBACKS_{key}", default, bounds.SETTINGS[key])


# Every default carries a comment on why it is what it is. Read through callbacks.conf.
CALLBACKS = {
    # Reused connections: idle ones kept per target host, and how many hosts' pools are kept (LRU).
    # requests' pool_connections counts pools, not connections.
    "POOL_MAXSIZE_PER_HOST": _setting("POOL_MAXSIZE_PER_HOST", 20),
    "POOL_HOSTS": _setting("POOL_HOSTS", 100),
    # Connect timeout and whole-request deadline, seconds (per task overridable).
    "CONNECT_TIMEOUT": _setting("CONNECT_TIMEOUT", 10.0),
    "TOTAL_TIMEOUT": _setting("TOTAL_TIMEOUT", 30.0),
    # Idle keep-alive connections older than this are not reused.
    "KEEPALIVE_IDLE_SECONDS": _setting("KEEPALIVE_IDLE_SECONDS", 90.0),
    # Response bytes kept per attempt, so a huge answer cannot fill the database; the rest is discarded
    # and the attempt marked truncated.
    "RESPONSE_BODY_LIMIT": _setting("RESPONSE_BODY_LIMIT", 1024 * 1024),
    # Response header bytes read and kept per attempt (at most MAX_RESPONSE_HEADERS lines): real
    # receivers send a few KiB; past this the head is not read further, the body not at all, and the
    # attempt is recorded with its status and marked truncated.
    "RESPONSE_HEADERS_LIMIT": _setting("RESPONSE_HEADERS_LIMIT", 32 * 1024),
    # Largest request body a tenant may register, bytes once encoded.
    "REQUEST_BODY_LIMIT": _setting("REQUEST_BODY_LIMIT", 1024 * 1024),
    # Retry defaults (tenant and task override them).
    "MAX_RETRIES": _setting("MAX_RETRIES", 3),
    "BACKOFF_INITIAL": _setting("BACKOFF_INITIAL", 1.0),
    "BACKOFF_MULTIPLIER": _setting("BACKOFF_MULTIPLIER", 1.5),
    "BACKOFF_MAX": _setting("BACKOFF_MAX", 60.0),
    # Fraction of the backoff added or removed at random, so retries of many tasks spread out.
    "BACKOFF_JITTER": _setting("BACKOFF_JITTER", 0.1),
    # A receiver's Retry-After is honoured up to this many seconds.
    "RETRY_AFTER_MAX": _setting("RETRY_AFTER_MAX", 3600.0),
    # urllib3 retries inside one attempt, for failures before the request was sent only.
    "CONNECT_RETRIES": _setting("CONNECT_RETRIES", 2),
    # Callbacks in flight per worker process, and django-q2 worker processes.
    # 200: measured with python -m bench.profile, a burst drains fastest at 100-200 (bigger jobs and
    # flushes); more threads than that cost more in switching than they gain (300: -15 %).
    "CONCURRENCY": _setting("CONCURRENCY", 200),
    "WORKER_PROCESSES": _setting("WORKER_PROCESSES", 2),
    # Dispatcher: tasks per claim and per django-q2 task, how often it looks without a wake-up,
    # and how much it keeps handed out at once (backpressure: never more than the workers hold).
    "DISPATCH_BATCH": _setting("DISPATCH_BATCH", 500),
    "DISPATCH_POLL_SECONDS": _setting("DISPATCH_POLL_SECONDS", 0.25),
    # With nothing due sooner, a leader that NOTIFY wakes (PostgreSQL) looks on its own only this
    # often: a lease run out is noticed that late at most (leases are minutes). Polling every
    # 0.25 s instead was a quarter of an idle service's CPU (python -m bench.idle).
    "DISPATCH_IDLE_SECONDS": _setting("DISPATCH_IDLE_SECONDS", 10.0),
    "DISPATCH_MAX_OUTSTANDING": _setting("DISPATCH_MAX_OUTSTANDING", 0),
    # Callbacks per django-q2 task: large enough that the broker's per-task cost is amortised,
    # small enough that a claim spreads over every worker process. A backlog drained 934/s with
    # 500 per claim and 100 per job against 645/s with 100 and 25 (python -m bench.profile).
    "TASKS_PER_JOB": _setting("TASKS_PER_JOB", 100),
    # How often a standby dispatcher tries to take the lead.
    "STANDBY_POLL_SECONDS": _setting("STANDBY_POLL_SECONDS", 1.0),
    # On SIGTERM, how long a worker lets callbacks in flight finish; those still going are
    # recorded as interrupted (and retried). Under 30 s, so qcluster exits within 30 s.
    "SHUTDOWN_GRACE_SECONDS": _setting("SHUTDOWN_GRACE_SECONDS", 25.0),
    # Leases: a claimed task not started by then, or started and not finished by its total
    # timeout plus this margin, is taken back (the worker or broker lost it).
    "QUEUED_LEASE_SECONDS": _setting("QUEUED_LEASE_SECONDS", 120.0),
    "RUNNING_LEASE_MARGIN_SECONDS": _setting("RUNNING_LEASE_MARGIN_SECONDS", 30.0),
    # A started task's lease is this short and its worker renews it (every quarter of it) while the
    # attempt is under way or unrecorded: a worker killed mid-attempt gives its callbacks back within
    # this, not after their whole total timeout.
    "RUNNING_LEASE_SECONDS": _setting("RUNNING_LEASE_SECONDS", 6.0),
    # Lanes (callbacks.delivery.claim.lanes): slots of an origin's limit granted to one worker, which
    # reuses each slot as soon as its response is in. A lane takes tasks for LANE_SECONDS, then
    # gives its slots back so the leader can weigh every tenant's and queue's due work again; a lane
    # whose worker vanished (renewed every third of the lease) frees its slots after LANE_LEASE_SECONDS.
    "LANE_LEASE_SECONDS": _setting("LANE_LEASE_SECONDS", 10.0),
    "LANE_SECONDS": _setting("LANE_SECONDS", 5.0),
    # A lane whose key has nothing due keeps its slots this long (PostgreSQL: it is woken by the
    # creation of a task to its origin, and at its key's next due time), so a steady stream to one
    # receiver starts from the lane rather than through the leader and the broker; 0 turns it off.
    "LANE_LINGER_SECONDS": _setting("LANE_LINGER_SECONDS", 1.0),
    # Worker side: finished attempts are written in bulk at least this often.
    "RECORD_FLUSH_SECONDS": _setting("RECORD_FLUSH_SECONDS", 0.05),
    # Circuit breakers per target origin (callbacks.delivery.breaker): consecutive failures
    # (timeout, connection, TLS, 5xx, 429) that open one; the first open period, doubled at each
    # re-opening up to the max; a tenant's breaker_failure_threshold / breaker_open_seconds win for
    # its attempts. Tasks held by a breaker longer than MAX_DEFER past their due time go dead.
    "BREAKER_FAILURE_THRESHOLD": _setting("BREAKER_FAILURE_THRESHOLD", 5),
    "BREAKER_OPEN_SECONDS": _setting("BREAKER_OPEN_SECONDS", 30.0),
    "BREAKER_OPEN_MAX_SECONDS": _setting("BREAKER_OPEN_MAX_SECONDS", 600.0),
    "BREAKER_MAX_DEFER_SECONDS": _setting("BREAKER_MAX_DEFER_SECONDS", 86400.0),
    # A timeout of an attempt given less time than this (its own connect or total timeout) is the
    # tenant's failure, not the receiver's: it never moves the breaker all tenants share, so one
    # tenant's 0.1 s timeouts cannot hold another's callbacks to a healthy receiver.
    "BREAKER_TIMEOUT_FLOOR_SECONDS": _setting("BREAKER_TIMEOUT_FLOOR_SECONDS", 1.0),
    # Respect for targets (callbacks.delivery.claim.limits): callbacks in flight (claimed or being
    # sent) per origin across every worker, and requests per second per origin (0: no rate limit).
    # A tenant's max_concurrency_per_origin / rate_limit_per_origin cap its own share of an origin.
    "MAX_CONCURRENCY_PER_ORIGIN": _setting("MAX_CONCURRENCY_PER_ORIGIN", 20),
    "RATE_LIMIT_PER_ORIGIN": _setting("RATE_LIMIT_PER_ORIGIN", 0.0),
    # The SSRF guard: callbacks never reach internal addresses. Off only for demos and tests (check W001).
    "ALLOW_PRIVATE_NETWORKS": env_bool("CALLBACKS_ALLOW_PRIVATE_NETWORKS", False),
    "ALLOWED_NETWORKS": env_networks("CALLBACKS_ALLOWED_NETWORKS"),
    # CA bundle for verifying receivers' certificates (certifi's when empty); a tenant's own CA
    # certificates are trusted beside it for its callbacks.
    "CA_BUNDLE": env_str("CALLBACKS_CA_BUNDLE", ""),
    # HTTP/2 to HTTPS receivers that offer it (ALPN), HTTP/1.1 to the others. On: see
    # docs/configuration.md for the measured figures behind the default.
    "HTTP2": env_bool("CALLBACKS_HTTP2", True),
    # Request headers no caller may set, on top of the hop-by-hop set ("X-Internal-*": a prefix).
    "DENIED_HEADERS": env_list("CALLBACKS_DENIED_HEADERS", []),
    # Regular expressions of further secret header names (whole name, any case), masked wherever kept.
    "SECRET_HEADER_PATTERNS": env_regexes("CALLBACKS_SECRET_HEADER_PATTERNS"),
    # API requests per tenant ("N/s", "N/min", "N/h"; "off" or "0": none); a tenant's own wins.
    "API_RATE_LIMIT": env_rate("CALLBACKS_API_RATE_LIMIT", "6000/min"),
    # Failed authentications (unknown API keys, wrong HTTP Basic passwords) per client address before
    # it answers 429: a client with a typo fails a few times, a guesser thousands.
    "AUTH_FAILURE_RATE": env_rate("CALLBACKS_AUTH_FAILURE_RATE", "20/min"),
    # How long a process keeps a tenant's whitelist before reading it again at send time (the send path
    # does not query it per request); how soon a change reaches running workers.
    "WHITELIST_CACHE_SECONDS": _setting("WHITELIST_CACHE_SECONDS", 5.0),
    # Retention: response bodies are blanked after BODY_DAYS; attempts of finished tasks
    # and stats roll-ups are deleted after DAYS (monitoring.retention, daily and purge_history).
    "RETENTION_BODY_DAYS": _setting("RETENTION_BODY_DAYS", 7),
    "RETENTION_DAYS": _setting("RETENTION_DAYS", 30),
    # Schedules: how many one tenant may hold, and the shortest interval between two fires of one
    # (cron's every-minute is the finest it can say anyway, with seconds fields refused): one tenant's
    # thousand schedules must not make the leader skip another's fires.
    "SCHEDULES_PER_TENANT": _setting("SCHEDULES_PER_TENANT", 100),
    "SCHEDULE_MIN_INTERVAL_SECONDS": _setting("SCHEDULE_MIN_INTERVAL_SECONDS", 60),
    # Readiness: due work older than this, or workers/dispatcher silent longer than that, fail /readyz.
    "READY_MAX_LAG_SECONDS": _setting("READY_MAX_LAG_SECONDS", 60.0),
    "READY_HEARTBEAT_SECONDS": _setting("READY_HEARTBEAT_SECONDS", 30.0),
    # How often workers and dispatchers report themselves alive; well under the threshold above.
    "HEARTBEAT_SECONDS": _setting("HEARTBEAT_SECONDS", 5.0),
}

# The largest API request body read at all. DRF's JSON parser does not consult this setting, so
# callbacks.api.parsers.LimitedJSONParser checks it against Content-Length before reading. A batch of
# 1000 callbacks of 16 KB fits; one callback's body is limited separately (REQUEST_BODY_LIMIT), and JSON
# escaping can make its request several times larger, hence at least 4x that limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_number(
    "CALLBACKS_API_REQUEST_LIMIT",
    max(16 * 1024 * 1024, 4 * CALLBACKS["REQUEST_BODY_LIMIT"]),
    bounds.API_REQUEST_LIMIT,
)

# --- django-q2 ---------------------------------------------------------------------------
Q_CLUSTER = {
    "name": "default",  # the default queue; a task's queue names the cluster that serves it
    "workers": CALLBACKS["WORKER_PROCESSES"],
    # A django-q2 task carries a batch; its function returns once every callback of the batch
    # is handed to the worker's thread pool, so this bounds waiting for free slots only.
    "timeout": 600,
    "retry": 660,  # must exceed timeout, or a task runs twice
    "max_attempts": 1,  # our leases bring lost work back; django-q2 must not replay batches
    "ack_failures": True,
    "save_limit": -1,  # do not store successful batch results: attempts live in TaskExecution
    "queue_limit": 2,  # small prefetch: SIGTERM drains the whole prefetch queue
    # A worker process is replaced after this many batches (bounds leaks); in-flight callbacks
    # finish and are recorded before it exits.
    "recycle": env_number("CALLBACKS_WORKER_RECYCLE", 500, bounds.WORKER_RECYCLE),
    "catch_up": False,
    # The ORM broker (callbacks.delivery.broker) is woken at each enqueue; finding no batch, it
    # looks again after this long anyway, in case a wake-up was missed. Polling every 10 ms instead
    # cost an idle service 10 % of a core (python -m bench.idle); a look is ~1 ms of CPU.
    "poll": env_number("CALLBACKS_BROKER_POLL_SECONDS", 5.0, bounds.BROKER_POLL_SECONDS),
    # How often the sentinel checks its processes and saves the cluster's status (to the cache,
    # where it expires after 3 s): 2 s instead of django-q2's 0.5 s, as the saving was most of an
    # idle sentinel's CPU; a killed worker process is replaced within this.
    "guard_cycle": 2.0,
    # The admin heading of django-q2's own tables, shown to superusers only (callbacks.admin.broker).
    "label": "Broker internals",
    # Q_CLUSTER_NAME=<queue> makes a cluster serve that queue; django-q2 1.11 then requires this key
    # (KeyError at import without it). Per-queue capacity comes from that process's environment.
    "ALT_CLUSTERS": {},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "callbacks.delivery.broker.WokenORM"

# --- Logging -----------------------------------------------------------------------------
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", LOG_LEVELS)
LOG_JSON = env_bool("LOG_JSON", False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "monitoring.logs.JsonFormatter"},
    },
    "filters": {"mask_secrets": {"()": "monitoring.logs.MaskSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django_q": {"level": env_choice("LOG_LEVEL_DJANGO_Q", "WARNING", LOG_LEVELS), "propagate": True},
        # urllib3 warns on every connect retry; our attempt records already say what happened.
        "urllib3": {"level": "ERROR"},
    },
}
