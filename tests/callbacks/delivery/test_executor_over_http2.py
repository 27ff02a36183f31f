"""send_attempt to receivers reached over HTTP/2: what arrives (signed, byte for byte), what is stored
(masked, with the protocol) and how answers are classified, as on HTTP/1.1; and retries and the
breaker driven by real HTTP/2 answers."""

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from callbacks.delivery.executor import send_attempt
from callbacks.masking import MASK
from callbacks.models import BreakerState, CircuitBreaker, TaskExecution, TaskStatus
from tests.callbacks.delivery.attempts import deliver, later
from tests.callbacks.delivery.http.sending import forget_pools
from tests.factories import make_task, make_tasks, past
from tests.receivers import Reply
from tests.tls_receivers import header

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_pools():
    forget_pools()


def headers_of(got) -> dict:
    return {name.decode(): value.decode() for name, value in got.headers}


def test_a_callback_arrives_signed_and_byte_exact_and_is_stored_masked(tenant, tls_receiver):
    receiver = tls_receiver(respond=Reply(headers={"Set-Cookie": "session=receiver-secret"}, body=b"thanks"))
    payload = '{"order": 42, "name": "Zoë"}'
    task = make_task(
        tenant=tenant,
        url=receiver.url(),
        payload=payload,
        headers={"Authorization": "Bearer s3cr3t", "X-Shop": "n"},
    )

    result = send_attempt(task, attempt=1)

    assert result.outcome == "success", result.error
    assert result.http_version == "2"
    [got] = receiver.wait_for(1)
    assert got.http_version == "2" and got.body == payload.encode()
    assert Webhook(tenant.signing_secret).verify(got.body, headers_of(got)) == {"order": 42, "name": "Zoë"}
    assert header(got, "authorization") == "Bearer s3cr3t" and header(got, "x-shop") == "n"
    assert result.request_headers["Authorization"] == MASK
    assert result.request_headers["webhook-signature"] == MASK
    assert result.response_headers["set-cookie"] == MASK
    assert result.response_body == "thanks"
    assert "s3cr3t" not in str(result) and "receiver-secret" not in str(result)


@pytest.mark.parametrize(
    ("reply", "outcome", "retryable", "retry_after"),
    [
        (Reply(status=503, headers={"Retry-After": "7"}), "http_5xx", True, 7.0),
        (Reply(status=429, headers={"Retry-After": "2"}), "http_4xx", True, 2.0),
        (Reply(status=404), "http_4xx", False, None),
        (Reply(status=301, headers={"Location": "https://example.com/x"}), "http_3xx", False, None),
        (Reply(status=204, body=b""), "success", False, None),
    ],
)
def test_answers_are_classified_as_on_http11(tenant, tls_receiver, reply, outcome, retryable, retry_after):
    receiver = tls_receiver(respond=reply)
    result = send_attempt(make_task(tenant=tenant, url=receiver.url()), attempt=1)
    assert (result.outcome, result.retryable, result.retry_after) == (outcome, retryable, retry_after)
    assert result.status_code == reply.status and result.http_version == "2"
    if outcome == "http_3xx":
        assert result.error == "HTTP 301 (redirect to https://example.com/x not followed)"


def test_a_trickling_answer_ends_at_the_total_deadline(tenant, tls_receiver):
    receiver = tls_receiver(respond=Reply(body=b"z" * 100, trickle=0.2))
    result = send_attempt(make_task(tenant=tenant, url=receiver.url(), total_timeout_seconds=1), attempt=1)
    assert result.outcome == "timeout" and result.retryable
    assert result.error == "timed out after 1.0 s (total deadline)"


def test_5xx_answers_are_retried_then_open_the_breaker(tenant, tls_receiver, callbacks_settings):
    callbacks_settings(BREAKER_FAILURE_THRESHOLD=3, BACKOFF_JITTER=0.0, MAX_CONCURRENCY_PER_ORIGIN=100)
    receiver = tls_receiver(respond=Reply(status=503))
    [task] = make_tasks(1, tenant=tenant, url=receiver.url(), run_at=past(1), max_retries=5)
    origin = task.origin
    now = timezone.now()
    for step in range(3):
        deliver(lambda t: send_attempt(t, attempt=t.attempts), now=later(now, step))
    task.refresh_from_db()
    assert task.status == TaskStatus.RETRYING and task.attempts == 3
    breaker = CircuitBreaker.objects.get(origin=origin)
    assert breaker.state == BreakerState.OPEN
    assert breaker.last_error == "HTTP 503"
    assert list(TaskExecution.objects.filter(task=task).values_list("http_version", flat=True)) == ["2"] * 3
    assert {item.http_version for item in receiver.wait_for(3)} == {"2"}
