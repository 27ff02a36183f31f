"""The words the whole service shares: task statuses and their groups, body formats, methods, attempt
outcomes, missed-fire policies and who acted. Models, services, the engine and monitoring all take them
from here, so a group of statuses means the same thing everywhere."""

from django.db import models


class TaskStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # waiting for its due time
    QUEUED = "queued"  # claimed by the dispatcher, handed to the broker (lease running)
    RUNNING = "running"  # a worker is sending it (lease running)
    RETRYING = "retrying"  # an attempt failed; waiting for the next one
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a response that must not be retried
    DEAD = "dead"  # retries exhausted: the dead letter
    CANCELLED = "cancelled"


# Groups of statuses, each named for the question it answers.
# Nothing more happens to a task in these.
FINAL_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.CANCELLED)
# The statuses the dispatcher claims from once next_attempt_at has come.
CLAIMABLE_STATUSES = (TaskStatus.SCHEDULED, TaskStatus.RETRYING)
# The statuses that hold a lease (locked_until) and come back when it expires.
LEASED_STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING)
# Work not finished yet: what queue depths count and what may still be cancelled.
UNFINISHED_STATUSES = (*CLAIMABLE_STATUSES, *LEASED_STATUSES)
# Not handed to a worker yet: what a queue purge cancels (a queued task's worker starts it only if it
# is still queued).
WAITING_STATUSES = (*CLAIMABLE_STATUSES, TaskStatus.QUEUED)
# What an attempt's decision can end a task in (a cancellation is never an attempt's decision).
DECIDED_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DEAD)
# What may be sent again by hand: failed and dead tasks, and retrying ones, sooner than planned.
RETRYABLE_STATUSES = (TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.RETRYING)


class BodyFormat(models.TextChoices):
    JSON = "json"
    XML = "xml"
    FORM = "form"
    RAW = "raw"


class HttpMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    HTTP_3XX = "http_3xx"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    # A 2xx (or other) code that the task's success_statuses do not accept.
    HTTP_UNEXPECTED = "http_unexpected"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TLS = "tls"
    SSRF_BLOCKED = "ssrf_blocked"
    WHITELIST_DENIED = "whitelist_denied"
    TOO_LARGE = "too_large"
    # The receiver answered 410 Gone, or an earlier callback to the same URL did (then it is not sent).
    GONE = "gone"
    # The worker holding the attempt vanished (killed, crashed); the lease expired.
    INTERRUPTED = "interrupted"
    # Anything our own code did not expect; kept so that no attempt goes unrecorded.
    ERROR = "error"


class SigningScheme(models.TextChoices):
    """How callbacks are signed (Standard Webhooks): the tenant chooses one."""

    V1 = "v1", "HMAC-SHA256 (v1)"
    V1A = "v1a", "ed25519 (v1a)"


class MissedPolicy(models.TextChoices):
    SKIP = "skip"
    FIRE_ONCE = "fire_once"


class ActorType(models.TextChoices):
    """Who made a change, as audit rows record it."""

    USER = "user", "operator"  # a person: the admin, a management command, the operators' API
    TENANT = "tenant", "tenant (API)"  # a calling system, through its API key
    SYSTEM = "system", "system"  # the service itself: schedule fires, failure notifications


# What each status and outcome means, in the words the console shows beside a badge.
STATUS_MEANINGS = {
    TaskStatus.SCHEDULED: "waiting for its due time",
    TaskStatus.QUEUED: "handed to a worker, not started yet",
    TaskStatus.RUNNING: "being sent now",
    TaskStatus.RETRYING: "an attempt failed; waiting for the next one",
    TaskStatus.SUCCEEDED: "delivered",
    TaskStatus.FAILED: "refused by the receiver with an answer that is not retried",
    TaskStatus.DEAD: "retries exhausted: a dead letter, to be replayed by hand",
    TaskStatus.CANCELLED: "cancelled before it was delivered",
}

OUTCOME_MEANINGS = {
    Outcome.SUCCESS: "the receiver accepted it",
    Outcome.HTTP_3XX: "the receiver answered a redirect, which is never followed",
    Outcome.HTTP_4XX: "the receiver refused it (4xx)",
    Outcome.HTTP_5XX: "the receiver failed (5xx)",
    Outcome.HTTP_UNEXPECTED: "a status code the callback's success statuses do not accept",
    Outcome.TIMEOUT: "no complete answer within the timeout",
    Outcome.CONNECTION: "the connection could not be made or was lost",
    Outcome.TLS: "the TLS handshake or certificate check failed",
    Outcome.SSRF_BLOCKED: "the address is internal: the SSRF guard refused to connect",
    Outcome.WHITELIST_DENIED: "the URL is not on the tenant's whitelist",
    Outcome.TOO_LARGE: "the answer was larger than the service reads",
    Outcome.GONE: "the receiver answered 410 Gone for this URL: no more callbacks go to it",
    Outcome.INTERRUPTED: "the worker sending it stopped before the attempt ended",
    Outcome.ERROR: "an error inside the service; the attempt was recorded",
}

# The colour family of each outcome's badge: delivered, refused for good, worth another try.
OUTCOME_TONES = {
    Outcome.SUCCESS: "good",
    Outcome.HTTP_3XX: "bad",
    Outcome.HTTP_4XX: "bad",
    Outcome.HTTP_UNEXPECTED: "bad",
    Outcome.SSRF_BLOCKED: "bad",
    Outcome.WHITELIST_DENIED: "bad",
    Outcome.TOO_LARGE: "bad",
    Outcome.GONE: "bad",
}
