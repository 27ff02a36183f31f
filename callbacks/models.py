"""The domain's tables. Writes go through callbacks.services, reads through callbacks.selectors."""

import uuid

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from callbacks.buckets import BUCKET_FIELDS
from callbacks.domain.bounds import (
    MAX_LABEL_LENGTH,
    MAX_PRIORITY,
    MAX_SUCCESS_STATUSES_LENGTH,
    MAX_URL_LENGTH,
)
from callbacks.domain.statuses import DEFAULT as DEFAULT_SUCCESS_STATUSES
from callbacks.domain.vocabulary import (
    FINAL_STATUSES,
    BodyFormat,
    HttpMethod,
    MissedPolicy,
    Outcome,
    SigningScheme,
    TaskStatus,
)
from callbacks.sealing import SealedTextField


class Tenant(models.Model):
    """A calling business system. Its API keys live in TenantApiKey."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    # How callbacks are signed (Standard Webhooks): v1 with the HMAC secret, v1a with the ed25519 key.
    signing_scheme = models.CharField(max_length=3, choices=SigningScheme.choices, default=SigningScheme.V1)
    # v1: secrets ("whsec_" + base64). After a rotation the previous one signs too, until its time is up.
    signing_secret = models.CharField(max_length=200, blank=True)
    previous_signing_secret = models.CharField(max_length=200, blank=True)
    previous_signing_secret_until = models.DateTimeField(null=True, blank=True)
    # v1a: ed25519 private keys ("whsk_" + base64), sealed at rest; they never leave the service, the
    # tenant gets their public keys. Rotated as the v1 secrets are.
    signing_private_key = SealedTextField(blank=True)
    previous_signing_private_key = SealedTextField(blank=True)
    previous_signing_key_until = models.DateTimeField(null=True, blank=True)
    enforce_whitelist = models.BooleanField(default=False)
    # Policy defaults for the tenant's tasks; empty means the installation's default.
    max_retries = models.PositiveSmallIntegerField(null=True, blank=True)
    backoff_initial_seconds = models.FloatField(null=True, blank=True)
    backoff_multiplier = models.FloatField(null=True, blank=True)
    backoff_max_seconds = models.FloatField(null=True, blank=True)
    connect_timeout_seconds = models.FloatField(null=True, blank=True)
    total_timeout_seconds = models.FloatField(null=True, blank=True)
    success_statuses = models.CharField(max_length=MAX_SUCCESS_STATUSES_LENGTH, blank=True)
    # Target protection defaults; empty means the installation's default.
    max_concurrency_per_origin = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_per_origin = models.FloatField(null=True, blank=True, help_text="requests per second")
    # Circuit breaker thresholds for the origins this tenant calls; empty: the installation's.
    breaker_failure_threshold = models.PositiveIntegerField(null=True, blank=True)
    breaker_open_seconds = models.FloatField(null=True, blank=True)
    # API throttling, e.g. "100/s" or "3000/min"; empty: the installation's default.
    api_rate_limit = models.CharField(max_length=20, blank=True)
    # Where failure events (dead letters, opened breakers) are posted, signed.
    notification_url = models.URLField(max_length=MAX_URL_LENGTH, blank=True)
    # TLS toward receivers (callbacks.delivery.http.tls): a client certificate (PEM, with its
    # chain) presented by this tenant's callbacks alone, its key sealed at rest, and CA
    # certificates trusted for its receivers beside CALLBACKS_CA_BUNDLE.
    client_certificate = models.TextField(blank=True)
    client_key = SealedTextField(blank=True)
    client_certificate_expires_at = models.DateTimeField(null=True, blank=True)
    ca_certificates = models.TextField(blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self):
        return self.name


class TenantApiKey(models.Model):
    """An API key, stored as a SHA-256 digest: keys are long random strings, so a slow hash adds
    nothing, and the digest lets each request find its key with one indexed lookup."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, help_text="first characters, to recognise a key")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Given by an operator only: the key may add whitelist entries while the tenant's whitelist is
    # enforced. Other keys may then only list and remove entries, so a leaked key cannot widen it.
    manages_whitelist = models.BooleanField(
        default=False, help_text="may add whitelist entries while the whitelist is enforced"
    )

    def __str__(self):
        return f"{self.prefix}… ({self.tenant})"


class CallbackTask(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the task_tenant_* indexes all start with it, and each index costs every
    # one of a callback's status updates (none of them can be HOT: status is indexed).
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="tasks", db_index=False)

    # What to send.
    url = models.URLField(max_length=MAX_URL_LENGTH)
    # scheme://host:port, lower-cased: the unit of breakers and per-target limits.
    origin = models.CharField(max_length=300)
    method = models.CharField(max_length=6, choices=HttpMethod.choices, default=HttpMethod.POST)
    headers = models.JSONField(default=dict, blank=True)
    body_format = models.CharField(max_length=4, choices=BodyFormat.choices, default=BodyFormat.JSON)
    # The body exactly as it goes on the wire (JSON text, XML, form-encoded, raw text):
    # kept as text rather than jsonb so that key order and spacing survive byte for byte.
    payload = models.TextField(blank=True)

    # When and where.
    run_at = models.DateTimeField(help_text="the first due time")
    priority = models.PositiveSmallIntegerField(default=5, validators=[MaxValueValidator(MAX_PRIORITY)])
    queue = models.CharField(max_length=64, default="default")
    ordering_key = models.CharField(max_length=MAX_LABEL_LENGTH, blank=True)
    schedule = models.ForeignKey(
        "callbacks.CallbackSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        db_index=False,  # task_schedule_created_idx: only the tasks that have one
    )

    # Policy, resolved at creation (task > tenant > installation), so a later change of
    # defaults does not alter tasks already accepted.
    max_retries = models.PositiveSmallIntegerField()
    backoff_initial_seconds = models.FloatField()
    backoff_multiplier = models.FloatField()
    backoff_max_seconds = models.FloatField()
    connect_timeout_seconds = models.FloatField()
    total_timeout_seconds = models.FloatField()
    success_statuses = models.CharField(
        max_length=MAX_SUCCESS_STATUSES_LENGTH, default=DEFAULT_SUCCESS_STATUSES
    )

    # The caller's labels: business and trace id reach the receiver as headers, so it can correlate;
    # the idempotency key makes a repeated create return the first task.
    business_id = models.CharField(max_length=MAX_LABEL_LENGTH, blank=True)
    trace_id = models.CharField(max_length=MAX_LABEL_LENGTH, blank=True)
    # The W3C trace context its attempts continue (the span that created it, else the caller's
    # traceparent), so each attempt's span is a child in the caller's trace; empty without one.
    traceparent = models.CharField(max_length=55, blank=True)
    idempotency_key = models.CharField(max_length=MAX_LABEL_LENGTH, null=True, blank=True)
    # What the creating request asked for (callbacks.domain.callback.request_fingerprint): the same key
    # with another request is refused. Empty on tasks made before it was recorded.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")

    # State.
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.SCHEDULED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # The claim token of the dispatch that handed the task out; a worker starts the task
    # only if the token still matches, so a reclaimed task is never sent by two workers.
    locked_by = models.CharField(max_length=64, blank=True)
    # When the task last became due, for the due-to-sent lag.
    due_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The dispatcher's claim and its "when is the next one due?": a range scan over
            # due rows only (a backlog is then sorted by priority), never over future ones.
            models.Index(
                fields=["next_attempt_at"],
                name="task_claimable_idx",
                condition=Q(status__in=["scheduled", "retrying"]),
            ),
            # The claim's window on PostgreSQL: one range scan per priority level, in claim
            # order, stopping at the window however large the backlog (callbacks/delivery/claim/candidates.py).
            models.Index(
                fields=["priority", "next_attempt_at", "due_at"],
                name="task_claim_order_idx",
                condition=Q(status__in=["scheduled", "retrying"]),
            ),
            # The same per origin: which origins have claimable tasks (a loose index scan) and
            # their windows, when an origin at its limit must be skipped (callbacks/delivery/claim/candidates.py).
            models.Index(
                fields=["origin", "priority", "next_attempt_at", "due_at"],
                name="task_origin_claim_idx",
                condition=Q(status__in=["scheduled", "retrying"]),
            ),
            # The lease reaper: leased work whose lease ran out.
            models.Index(
                fields=["locked_until"],
                name="task_leased_idx",
                condition=Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["tenant", "-created_at"], name="task_tenant_created_idx"),
            models.Index(fields=["tenant", "status"], name="task_tenant_status_idx"),
            # A business or trace id is looked up whole, by a tenant or across every tenant (the operator's
            # search): keyed by the id alone, without the tasks that have none (most of them may not, and
            # their updates then skip these indexes). Another tenant's tasks with the same id are read too
            # and filtered out: ids are rarely shared between tenants.
            models.Index(fields=["business_id"], name="task_business_idx", condition=~Q(business_id="")),
            models.Index(fields=["trace_id"], name="task_trace_idx", condition=~Q(trace_id="")),
            models.Index(fields=["origin", "status"], name="task_origin_status_idx"),
            # A schedule's callbacks newest first (its admin page, the task list filtered by it); the
            # leading column serves the foreign key's lookups too.
            models.Index(
                fields=["schedule", "-created_at"],
                name="task_schedule_created_idx",
                condition=Q(schedule__isnull=False),
            ),
            # Ordering keys: the earliest unfinished task of a key goes first.
            models.Index(
                fields=["tenant", "ordering_key", "created_at"],
                name="task_ordering_idx",
                condition=~Q(ordering_key=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(priority__lte=MAX_PRIORITY), name="task_priority_range"),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                name="task_unique_idempotency_key",
                condition=Q(idempotency_key__isnull=False),
            ),
        ]

    # Not a column: set by the engine when it starts the task, from GoneUrl, so the attempt ends `gone`
    # without a request.
    url_gone = False

    def __str__(self):
        return f"{self.method} {self.url} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class TaskSearchPath(models.Model):
    """A task's path and query (its URL after the origin, lower-cased), for search by a fragment of it
    (callbacks.selectors.task_search). Written once when the task is made, never updated: its trigram
    index (migration 0010_task_search, PostgreSQL only) costs one insert per task, where the same index
    on the task's row would be written again at each of its status updates (none of them is HOT)."""

    task = models.OneToOneField(CallbackTask, on_delete=models.CASCADE, primary_key=True, related_name="+")
    path = models.CharField(max_length=MAX_URL_LENGTH, blank=True)

    def __str__(self):
        return self.path


class TaskOrigin(models.Model):
    """Every origin tasks were made for, once: search by a fragment of a host reads these few rows
    (thousands where tasks are millions), then the tasks of the origins found through
    task_origin_status_idx. A host's trigrams (".com", "api.") are shared by most tasks, so a trigram
    index over every task's host would read most of itself for each search."""

    origin = models.CharField(max_length=300, primary_key=True)

    def __str__(self):
        return self.origin


class GoneUrl(models.Model):
    """A URL that answered 410 Gone to one of the tenant's callbacks: the tenant's later callbacks to it
    end `gone` without being sent, until the tenant or an operator clears it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="gone_urls", db_index=False)
    url = models.URLField(max_length=MAX_URL_LENGTH)
    # sha256 of the URL: URLs are too long for a unique index of their own.
    url_digest = models.CharField(max_length=64)
    marked_at = models.DateTimeField(default=dj_timezone.now)
    task_id = models.UUIDField(null=True, blank=True, help_text="the callback that was answered 410")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "url_digest"], name="gone_url_unique")]
        ordering = ["-marked_at"]

    def __str__(self):
        return f"{self.url} ({self.tenant})"


class TaskExecution(models.Model):
    """One attempt (the seed's task_executions table). Written once, never changed."""

    # Indexed by execution_task_attempt_idx, which starts with it.
    task = models.ForeignKey(
        CallbackTask, on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    attempt = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The request as sent, secrets masked.
    request_method = models.CharField(max_length=6)
    request_url = models.TextField()
    request_headers = models.JSONField(default=dict)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    # The protocol the response came over: "1.1" or "2"; empty when no response came.
    http_version = models.CharField(max_length=3, blank=True, default="")
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["task", "attempt"], name="execution_task_attempt_idx"),
            models.Index(fields=["started_at"], name="execution_started_idx"),
        ]

    def __str__(self):
        return f"attempt {self.attempt} of {self.task_id}: {self.outcome}"


class CallbackSchedule(models.Model):
    """A cron schedule that materialises CallbackTasks from its template."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    task_template = models.JSONField(default=dict)
    missed_policy = models.CharField(max_length=10, choices=MissedPolicy.choices, default=MissedPolicy.SKIP)
    paused = models.BooleanField(default=False)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="schedule_unique_name")]
        indexes = [
            models.Index(fields=["next_fire_at"], name="schedule_due_idx", condition=Q(paused=False)),
        ]

    def __str__(self):
        return self.name


class TaskEvent(models.Model):
    """A change of a task's status, with when and why."""

    # Indexed by event_task_at_idx, which starts with it.
    task = models.ForeignKey(CallbackTask, on_delete=models.CASCADE, related_name="events", db_index=False)
    at = models.DateTimeField(default=dj_timezone.now)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task", "at"], name="event_task_at_idx")]

    def __str__(self):
        return f"{self.from_status or '-'} -> {self.to_status}"


class QueueState(models.Model):
    """A declared queue and its operator's switch: callbacks may name only these (and `default`,
    always, row or not). Operators declare them (services.queues.queue_create)."""

    name = models.CharField(max_length=64, primary_key=True)
    paused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self):
        return self.name


class UrlWhitelistEntry(models.Model):
    """One allowed target pattern of a tenant: exact host or *.suffix, optional scheme, port, path prefix."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="whitelist")
    host = models.CharField(max_length=255, help_text="example.com or *.example.com")
    scheme = models.CharField(max_length=5, blank=True, help_text="http or https; empty: both")
    port = models.PositiveIntegerField(null=True, blank=True, help_text="empty: the scheme's default or any")
    path_prefix = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name = "URL whitelist entry"
        verbose_name_plural = "URL whitelist entries"

    def __str__(self):
        return (
            f"{self.scheme or '*'}://{self.host}{':' + str(self.port) if self.port else ''}{self.path_prefix}"
        )


class BreakerState(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker(models.Model):
    """Breaker of one target origin, shared by every worker through the database."""

    origin = models.CharField(max_length=300, unique=True)
    state = models.CharField(max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # How many times it opened without a full recovery: the open period grows with it.
    open_count = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Callbacks in flight the origin gets while it is slowed down (it answered 429 or 503): halved
    # at each such answer, one more at each healthy one; empty once back at the configured limit.
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    # Every field that moves with the breaker's state (all but id and origin): what a worker's
    # recording writes back, and what the API and the audit log show beside id and origin.
    STATE_FIELDS = (
        "state",
        "consecutive_failures",
        "open_count",
        "opened_at",
        "next_probe_at",
        "last_error",
        "concurrency_limit",
        "updated_at",
    )

    def __str__(self):
        return f"{self.origin} ({self.state})"

    def close(self, *, now) -> None:
        """Closed and forgiven (a successful probe, or an operator's reset); opened_at stays as the
        time it last opened. Changes the instance only: the caller saves it."""
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.open_count = 0
        self.next_probe_at = None
        self.updated_at = now


class AuditLog(models.Model):
    """Who changed what, when, with the state before and after. Written once, never changed."""

    at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    actor_type = models.CharField(max_length=10)  # an ActorType value
    actor = models.CharField(max_length=200)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=100)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"


class RuntimeSetting(models.Model):
    """A setting changed at run time; overrides settings.CALLBACKS[key] in every process."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self):
        return self.key


class AttemptRollup(models.Model):
    """Attempts of one period with one (tenant, queue, host, outcome, status class), summed.

    Every attempt is added to its minute's row and to its hour's row (period_minutes 1 and 60).
    Stats read these instead of TaskExecution: a window uses hour rows for its whole hours and
    minute rows for the part before the first whole hour, so 24 hours cost a few tens of
    thousands of small rows, not ten million attempts. Latency keeps a fixed histogram
    (callbacks.buckets) whose counts add up across rows and processes.
    """

    period_minutes = models.PositiveSmallIntegerField(default=1)  # 1 or 60
    period_start = models.DateTimeField()
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    queue = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    outcome = models.CharField(max_length=20)
    status_class = models.CharField(max_length=4)  # 1xx .. 5xx, or "none" without a response
    count = models.PositiveIntegerField(default=0)
    # Attempts that have a duration (an attempt refused before sending has none).
    timed_count = models.PositiveIntegerField(default=0)
    sum_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)
    locals().update({name: models.PositiveIntegerField(default=0) for name in BUCKET_FIELDS})

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "period_minutes",
                    "period_start",
                    "tenant",
                    "queue",
                    "host",
                    "outcome",
                    "status_class",
                ],
                name="rollup_unique_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "period_minutes", "period_start"], name="rollup_tenant_period_idx")
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M}+{self.period_minutes}m {self.host} {self.outcome}: {self.count}"


class Lane(models.Model):
    """Slots of one origin's concurrency limit granted to one worker: at most `width` callbacks of
    (queue, origin, tenant) in flight through this lane. The leader grants lanes (the sum of an
    origin's widths never exceeds its limit); the worker holding one reuses a slot the moment its
    response is in, taking the next due task itself, and only ever narrows the lane. A lane whose
    worker stops renewing it expires and its slots count no more."""

    token = models.CharField(max_length=32, primary_key=True)  # the claim token of its tasks
    queue = models.CharField(max_length=64)
    origin = models.CharField(max_length=300)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    width = models.PositiveIntegerField()
    # False for a breaker's probe: exactly one attempt.
    refills = models.BooleanField(default=True)
    # Requests per second the lane may start, for an origin or a tenant's share under a rate limit:
    # the leader grants such a lane the whole rate and claims nothing more of it while it lives.
    rate = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["origin", "expires_at"], name="lane_origin_idx")]

    def __str__(self):
        return f"{self.origin} x{self.width} ({self.token[:8]})"


class Heartbeat(models.Model):
    """The last sign of life of one worker process or dispatcher; readiness reads these."""

    role = models.CharField(max_length=20)  # "worker" or "dispatcher"
    name = models.CharField(max_length=200)  # host:pid, unique per process
    seen_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(default=dj_timezone.now)
    info = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "name"], name="heartbeat_unique_process")]
        indexes = [models.Index(fields=["role", "seen_at"], name="heartbeat_role_seen_idx")]

    def __str__(self):
        return f"{self.role} {self.name}"
