"""One delivery attempt: build the request a receiver gets (the public API
contract, docs/api.md), send it, classify the result.

Delivery failures are data, not exceptions: send_attempt always returns an AttemptResult, with
an outcome class, a short readable error and whether trying again could help.
"""

import email.utils
import functools
import hashlib
import logging
import random
import re
import socket
import ssl
import time
from datetime import UTC, datetime
from http.client import IncompleteRead, RemoteDisconnected
from urllib.parse import urlsplit, urlunsplit

import requests
from django.utils import timezone
from urllib3.exceptions import NameResolutionError

import callbacks
from callbacks import conf, whitelist
from callbacks.delivery import http, signing
from callbacks.delivery.http.tls import UnusableIdentity, identity_of
from callbacks.delivery.results import AttemptResult
from callbacks.delivery.ssrf import SsrfBlocked
from callbacks.domain import encoding, statuses
from callbacks.domain.headers import forbidden_reason as forbidden_header_reason
from callbacks.masking import MASK, mask_headers, mask_text
from callbacks.models import Outcome

logger = logging.getLogger(__name__)

USER_AGENT = f"taskcenter-callbacks/{callbacks.__version__}"
ERROR_MAX_CHARS = 500
RETRYABLE_4XX = frozenset({408, 429})
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# Headers we set ourselves; a task's own header of the same name (any case) gives way.
_OWN_HEADERS = (
    "user-agent",
    "content-type",
    "x-callback-task-id",
    "x-callback-attempt",
    "x-business-id",
    "x-trace-id",
    "traceparent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


def send_attempt(task, *, attempt: int) -> AttemptResult:
    """Send attempt number `attempt` of `task` (task.tenant loaded). Never raises."""
    started_at = timezone.now()
    clock = time.perf_counter()
    headers: dict = {}

    def result(outcome, *, error="", retryable=False, status_code=None, **response) -> AttemptResult:
        return AttemptResult(
            outcome=outcome,
            status_code=status_code,
            started_at=started_at,
            duration_ms=(time.perf_counter() - clock) * 1000,
            request_method=task.method,
            request_url=_mask_url(task.url),
            request_headers=mask_headers(headers),
            response_headers=response.get("response_headers", {}),
            response_body=response.get("response_body", ""),
            response_truncated=response.get("response_truncated", False),
            error=mask_text(error)[:ERROR_MAX_CHARS],
            retryable=retryable,
            retry_after=response.get("retry_after"),
            http_version=response.get("http_version", ""),
        )

    try:
        # The whitelist may have changed since the task was accepted; checked before any connection.
        denial = whitelist.send_time_denial(task)
        if denial:
            return result(Outcome.WHITELIST_DENIED, error=denial)
        headers = build_headers(task, attempt, int(time.time()))
        raw = http.send(
            method=task.method,
            url=task.url,
            headers=headers,
            body=_body(task),
            connect_timeout=task.connect_timeout_seconds,
            total_timeout=task.total_timeout_seconds,
            body_limit=conf.get("RESPONSE_BODY_LIMIT"),
            tls_identity=identity_of(task.tenant),
        )
    except SsrfBlocked as exc:
        return result(Outcome.SSRF_BLOCKED, error=str(exc))
    except UnusableIdentity as exc:
        # Nothing was sent; once an operator restores the key, a retry goes out with it.
        return result(Outcome.TLS, error=str(exc), retryable=True)
    except requests.exceptions.SSLError as exc:
        return result(Outcome.TLS, error=_tls_error_text(exc))
    except requests.exceptions.Timeout as exc:
        return result(Outcome.TIMEOUT, error=_timeout_error_text(exc, task), retryable=True)
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        return result(Outcome.CONNECTION, error=_connection_error_text(exc), retryable=True)
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidHeader,
    ) as exc:
        # The task itself is unsendable: trying again cannot help.
        return result(Outcome.ERROR, error=f"invalid request: {_short(exc)}")
    except Exception as exc:
        # Our own bug or something unforeseen: record it, and let the retry budget decide.
        logger.exception("unexpected error delivering task %s attempt %s", task.id, attempt)
        return result(
            Outcome.ERROR, error=f"internal error: {type(exc).__name__}: {_short(exc)}", retryable=True
        )

    outcome, retryable = classify_status(raw.status_code, task.success_statuses)
    return result(
        outcome,
        error="" if outcome == Outcome.SUCCESS else _status_error_text(raw),
        retryable=retryable,
        status_code=raw.status_code,
        # Set-Cookie and the like are secrets of the receiver's: stored masked.
        response_headers=mask_headers({name: _storable(value) for name, value in raw.headers.items()}),
        response_body=_storable(raw.body.decode("utf-8", errors="replace")),
        response_truncated=raw.truncated,
        retry_after=parse_retry_after(_header(raw.headers, "retry-after")),
        http_version=raw.http_version,
    )


def classify_status(status_code: int, success_statuses: str) -> tuple[str, bool]:
    """(outcome, retryable) for a response status under the task's success statuses."""
    if statuses.is_success(success_statuses, status_code):
        return Outcome.SUCCESS, False
    if 300 <= status_code < 400:
        return Outcome.HTTP_3XX, False
    if 400 <= status_code < 500:
        return Outcome.HTTP_4XX, status_code in RETRYABLE_4XX
    if 500 <= status_code < 600:
        return Outcome.HTTP_5XX, True
    return Outcome.HTTP_UNEXPECTED, False


# --- the request -------------------------------------------------------------------------------


def build_headers(task, attempt: int, timestamp: int) -> dict:
    """Every header the receiver gets for this attempt, unmasked (docs/api.md, "What a receiver gets")."""
    headers = {
        str(name): str(value)
        for name, value in (task.headers or {}).items()
        if str(name).lower() not in _OWN_HEADERS
        # A header denied since the task was accepted (CALLBACKS_DENIED_HEADERS) is dropped.
        and forbidden_header_reason(str(name)) is None
    }
    headers["User-Agent"] = USER_AGENT
    if task.payload:
        headers["Content-Type"] = encoding.content_type(task.body_format, task.headers or {})
    headers["X-Callback-Task-Id"] = str(task.id)
    headers["X-Callback-Attempt"] = str(attempt)
    headers["X-Business-Id"] = task.business_id or ""
    headers["X-Trace-Id"] = task.trace_id or ""
    headers["traceparent"] = traceparent(task.trace_id or str(task.id))
    msg_id = webhook_id(task)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    tenant = task.tenant
    signing_secrets = [tenant.signing_secret, tenant.previous_signing_secret]
    if tenant.signing_secret:
        headers["webhook-signature"] = signing.signature_header(
            signing_secrets, msg_id=msg_id, timestamp=timestamp, body=_body(task)
        )
    return headers


def webhook_id(task) -> str:
    """Stable across every attempt of one task, so receivers can deduplicate on it."""
    return "msg_" + task.id.hex


def traceparent(trace_id: str) -> str:
    """A W3C traceparent: the caller's trace id when it is one (32 hex), else derived from it;
    a new span id per attempt."""
    lowered = trace_id.lower()
    if _TRACE_ID.match(lowered) and lowered != "0" * 32:
        trace = lowered
    else:
        trace = hashlib.sha256(trace_id.encode()).hexdigest()[:32]
    # A span id must be unique, not secret: random's generator (reseeded in every forked
    # worker) spares a getrandom system call per attempt.
    span = 0
    while span == 0:  # all zeros is invalid
        span = random.getrandbits(64)
    return f"00-{trace}-{span:016x}-01"


def _body(task) -> bytes:
    return (task.payload or "").encode("utf-8")


# --- the response ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None if absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _header(headers: dict, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _storable(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL characters; a binary body may contain them.
    return text.replace("\x00", "\ufffd")


@functools.lru_cache(maxsize=4096)
def _mask_url(url: str) -> str:
    """The URL as stored: a password in its user info is a secret (masked once per distinct URL:
    a task's every attempt, and most tasks of an endpoint, store the same one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if parts.password is None:
        return mask_text(url)
    netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return mask_text(urlunsplit(parts._replace(netloc=netloc)))


# --- error texts -------------------------------------------------------------------------------


def _status_error_text(raw) -> str:
    text = f"HTTP {raw.status_code}"
    location = _header(raw.headers, "location")
    if 300 <= raw.status_code < 400 and location:
        text += f" (redirect to {location} not followed)"
    return text


def _timeout_error_text(exc: Exception, task) -> str:
    if isinstance(exc, http.TotalTimeout):
        return str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connect timed out after {float(min(task.connect_timeout_seconds, task.total_timeout_seconds))} s"
    return f"timed out after {float(task.total_timeout_seconds)} s waiting for the response"


def _tls_error_text(exc: Exception) -> str:
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verify failed: {cause.verify_message}"
    for cause in causes:
        reason = getattr(cause, "reason", None)
        if isinstance(reason, str) and reason:
            return f"TLS error: {reason.replace('_', ' ').lower()}"
    return f"TLS error: {_short(causes[-1])}"


def _connection_error_text(exc: Exception) -> str:
    causes = _causes(exc)
    known = (
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset by peer"),
        (BrokenPipeError, "connection closed by the receiver while sending the request"),
        (RemoteDisconnected, "connection closed by the receiver without a response"),
        (IncompleteRead, "connection closed before the whole response arrived"),
    )
    for kind, text in known:
        if any(isinstance(cause, kind) for cause in causes):
            return text
    for cause in causes:
        if isinstance(cause, NameResolutionError | socket.gaierror):
            match = re.search(r"resolve '([^']+)'", str(cause))
            return f"could not resolve host {match.group(1)}" if match else "could not resolve host"
    return f"connection error: {_short(causes[-1])}"


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and everything it wraps (requests -> urllib3 -> socket), outermost first."""
    found: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in found):
            continue
        found.append(current)
        pending.extend(
            [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        )
    return found


def _short(exc) -> str:
    return str(exc)[:200]
