"""One delivery attempt: build the request a receiver gets (the public API
contract, docs/api.md), send it, classify the result.

Delivery failures are data, not exceptions: send_attempt always returns an AttemptResult, with
an outcome class, a short readable error and whether trying again could help.
"""

import email.utils
import functools
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
from callbacks import conf, keys, tracing, whitelist
from callbacks.delivery import http, signing
from callbacks.delivery.http.tls import UnusableIdentity, identity_of
from callbacks.delivery.results import AttemptResult
from callbacks.delivery.ssrf import SsrfBlocked
from callbacks.domain import encoding, statuses, tracecontext
from callbacks.domain.bounds import MAX_RESPONSE_HEADERS
from callbacks.domain.headers import forbidden_reason as forbidden_header_reason
from callbacks.domain.urls import sendable_url
from callbacks.masking import MASK, mask_headers, mask_text
from callbacks.models import Outcome

logger = logging.getLogger(__name__)

USER_AGENT = f"taskcenter-callbacks/{callbacks.__version__}"
ERROR_MAX_CHARS = 500
RETRYABLE_4XX = frozenset({408, 429})
# Standard Webhooks: 410 means "stop sending here"; the URL is marked gone for the tenant.
GONE = 410
GONE_UNSENT_ERROR = "not sent: this URL answered 410 Gone to an earlier callback (clear it to send again)"
_RETRY_AFTER_DIGITS = 12  # delta-seconds longer than this (30,000 years) are read as 10**12
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
    """Send attempt number `attempt` of `task` (task.tenant loaded). Never raises. When traces are
    exported, the attempt is a client span, and the receiver's traceparent names it as the parent."""
    if not tracing.enabled():
        return _send_attempt(task, attempt=attempt, span=None)
    try:
        span = _start_attempt_span(task, attempt)
    except Exception:  # tracing must never stop a delivery
        logger.exception("starting the span of task %s attempt %s failed", task.id, attempt)
        return _send_attempt(task, attempt=attempt, span=None)
    result = _send_attempt(task, attempt=attempt, span=span)
    try:
        _end_attempt_span(span, result)
    except Exception:
        logger.exception("ending the span of task %s attempt %s failed", task.id, attempt)
    return result


def _send_attempt(task, *, attempt: int, span) -> AttemptResult:
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
            # Error texts quote the receiver (a Location, a status line): as storable as its headers.
            error=_storable(mask_text(error))[:ERROR_MAX_CHARS],
            retryable=retryable,
            retry_after=response.get("retry_after"),
            http_version=response.get("http_version", ""),
        )

    try:
        if task.url_gone:
            return result(Outcome.GONE, error=GONE_UNSENT_ERROR)
        # The whitelist may have changed since the task was accepted; checked before any connection.
        denial = whitelist.send_time_denial(task)
        if denial:
            return result(Outcome.WHITELIST_DENIED, error=denial)
        headers = build_headers(
            task, attempt, int(time.time()), traceparent=tracing.traceparent_of(span) if span else None
        )
        raw = http.send(
            method=task.method,
            url=sendable_url(task.url),
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

    if span is not None:
        span.set_attribute("network.protocol.version", raw.http_version)
    try:
        outcome, retryable = classify_status(raw.status_code, task.success_statuses)
        headers_kept, headers_cut = stored_headers(raw.headers)
        headers_cut = headers_cut or raw.headers_cut
        return result(
            outcome,
            error="" if outcome == Outcome.SUCCESS else _status_error_text(raw),
            retryable=retryable,
            status_code=raw.status_code,
            response_headers=headers_kept,
            response_body=_storable(raw.body.decode("utf-8", errors="replace")),
            response_truncated=raw.truncated or headers_cut,
            retry_after=parse_retry_after(_header(raw.headers, "retry-after")),
            http_version=raw.http_version,
        )
    except Exception as exc:
        # The receiver has answered: whatever went wrong on our side, the attempt is recorded with
        # its real status, and a delivered callback is not sent again because of our own bug.
        logger.exception("unexpected error reading the response of task %s attempt %s", task.id, attempt)
        return _response_without_details(result, raw, task, exc)


def _response_without_details(result, raw, task, exc: Exception) -> AttemptResult:
    """The attempt as its status says, without the response's headers and body."""
    status_code = raw.status_code
    note = f"HTTP {status_code}; response not kept: internal error: {type(exc).__name__}: {_short(exc)}"
    try:
        outcome, retryable = classify_status(status_code, task.success_statuses)
    except Exception:
        outcome, retryable = Outcome.ERROR, False
    return result(
        outcome, error=note, retryable=retryable, status_code=status_code, http_version=raw.http_version
    )


def classify_status(status_code: int, success_statuses: str) -> tuple[str, bool]:
    """(outcome, retryable) for a response status under the task's success statuses."""
    if statuses.is_success(success_statuses, status_code):
        return Outcome.SUCCESS, False
    if 300 <= status_code < 400:
        return Outcome.HTTP_3XX, False
    if status_code == GONE:
        return Outcome.GONE, False
    if 400 <= status_code < 500:
        return Outcome.HTTP_4XX, status_code in RETRYABLE_4XX
    if 500 <= status_code < 600:
        return Outcome.HTTP_5XX, True
    return Outcome.HTTP_UNEXPECTED, False


# --- the request -------------------------------------------------------------------------------


def build_headers(task, attempt: int, timestamp: int, *, traceparent: str | None = None) -> dict:
    """Every header the receiver gets for this attempt, unmasked (docs/api.md, "What a receiver gets").
    `traceparent`: the attempt's span's, when traces are exported."""
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
    headers["traceparent"] = traceparent or new_traceparent(task.trace_id or str(task.id))
    msg_id = webhook_id(task)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    scheme, signing_keys = keys.signing_keys(task.tenant, datetime.fromtimestamp(timestamp, UTC))
    if signing_keys:
        headers["webhook-signature"] = signing.signature_header(
            signing_keys, msg_id=msg_id, timestamp=timestamp, body=_body(task), scheme=scheme
        )
    return headers


def webhook_id(task) -> str:
    """Stable across every attempt of one task, so receivers can deduplicate on it."""
    return "msg_" + task.id.hex


def new_traceparent(trace_id: str) -> str:
    """A W3C traceparent when no span is exported: the caller's trace id when it is one (32 hex),
    else derived from it (tracecontext.trace_id_of); a new span id per attempt."""
    trace = tracecontext.trace_id_of(trace_id)
    # A span id must be unique, not secret: random's generator (reseeded in every forked
    # worker) spares a getrandom system call per attempt.
    span = 0
    while span == 0:  # all zeros is invalid
        span = random.getrandbits(64)
    return f"00-{trace}-{span:016x}-01"


def _start_attempt_span(task, attempt: int):
    """The attempt's client span (HTTP semantic conventions), child of the span that created the
    task, or of the caller's, when it has a traceparent; else the root of the task's trace."""
    parts = urlsplit(task.url)
    attributes = {
        "http.request.method": task.method,
        "url.full": _mask_url(task.url),
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        "http.request.resend_count": attempt - 1,
        "callbacks.task_id": str(task.id),
        "callbacks.attempt": attempt,
        "callbacks.tenant": task.tenant.name,
        "callbacks.queue": task.queue,
    }
    return tracing.start_span(
        task.method,
        kind="client",
        parent=task.traceparent,
        trace_id=tracecontext.trace_id_of(task.trace_id or str(task.id)),
        attributes=attributes,
    )


def _end_attempt_span(span, result: AttemptResult) -> None:
    try:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("callbacks.outcome", result.outcome)
        if result.status_code is not None:
            span.set_attribute("http.response.status_code", result.status_code)
        if result.outcome != Outcome.SUCCESS:
            span.set_attribute("error.type", str(result.status_code or result.outcome))
            span.set_status(Status(StatusCode.ERROR, result.error or result.outcome))
    finally:
        span.end()


def _body(task) -> bytes:
    return (task.payload or "").encode("utf-8")


# --- the response ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None if absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    # ASCII digits only: str.isdigit() and int() also take other scripts' digits ("²", "١٢"),
    # and int("²") raises. A number too long for int() (Python refuses over 4300 digits) is
    # longer than any wait honoured anyway.
    if value.isascii() and value.isdigit():
        return float(int(value)) if len(value) <= _RETRY_AFTER_DIGITS else float(10**_RETRY_AFTER_DIGITS)
    if not value.isascii():
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def stored_headers(headers: dict) -> tuple[dict, bool]:
    """The response headers as kept, and whether some were left out: at most MAX_RESPONSE_HEADERS of
    them, names and values together within RESPONSE_HEADERS_LIMIT characters (a header that does not
    fit is left out whole), and masked: Set-Cookie and the like are secrets of the receiver's."""
    room = conf.get("RESPONSE_HEADERS_LIMIT")
    kept: dict = {}
    for name, value in headers.items():
        size = len(name) + len(value)
        if size > room or len(kept) >= MAX_RESPONSE_HEADERS:
            continue
        kept[name] = _storable(value)
        room -= size
    return mask_headers(kept), len(kept) < len(headers)


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
