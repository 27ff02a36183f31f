"""What one attempt did, as data: the engine's record of an attempt before it is written.

Apart from the executor that makes it, so that what only records attempts (the dispatcher taking
back work whose worker vanished, the recording itself) does not load the HTTP client.
"""

from dataclasses import dataclass
from datetime import datetime

from callbacks.models import Outcome


@dataclass
class AttemptResult:
    outcome: str  # callbacks.models.Outcome value
    status_code: int | None
    started_at: datetime  # aware UTC
    duration_ms: float
    request_method: str
    request_url: str
    request_headers: dict  # as sent, secrets masked
    response_headers: dict
    response_body: str  # at most RESPONSE_BODY_LIMIT bytes, decoded
    response_truncated: bool
    error: str  # short readable text, "" on success, secrets masked
    retryable: bool
    retry_after: float | None  # seconds the receiver asked us to wait
    http_version: str = ""  # "1.1" or "2" when a response came, "" otherwise


def interrupted_result(task, *, error: str) -> AttemptResult:
    """The record of an attempt whose worker went away before it ended (killed, or stopped
    past its grace period): it may or may not have reached the receiver, so it is retried."""
    return _bare_result(task, outcome=Outcome.INTERRUPTED, error=error)


def internal_error_result(task, *, error: str) -> AttemptResult:
    """The record of an attempt that failed on our side with nothing known of the receiver's answer
    (the executor records every answer it got): recorded at once rather than left to its lease, and
    retried like an interrupted one."""
    return _bare_result(task, outcome=Outcome.ERROR, error=error)


def _bare_result(task, *, outcome: str, error: str) -> AttemptResult:
    return AttemptResult(
        outcome=outcome,
        status_code=None,
        started_at=task.updated_at,  # leases.start_claimed stamped it when the attempt began
        duration_ms=None,
        request_method=task.method,
        request_url=task.url,
        request_headers={},
        response_headers={},
        response_body="",
        response_truncated=False,
        error=error,
        retryable=True,
        retry_after=None,
    )
