"""Secrets are sent, and masked everywhere they are kept or shown: the database's attempt rows and every
other table but the task itself, API responses, admin pages and log lines (plain and JSON)."""

import io
import json
import logging

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from callbacks import masking
from callbacks.delivery.claim import leases
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import CallbackTask, TaskExecution
from monitoring.logs import JsonFormatter, MaskSecretsFilter
from tests.certificates import client_pem
from tests.receivers import Reply

# Sent as request headers; each must reach the receiver in clear and be stored and shown masked.
HEADERS = {
    "Authorization": "Bearer sk_live_SECRET123",
    "Cookie": "session=SECRET456",
    "X-Api-Key": "SECRET789",
    "Proxy-Authorization": "Basic U0VDUkVUUFJPWFk=",
    "X-Acme-Private": "SECRET000",  # secret only through the configured pattern below
    "X-Plain": "visible-value",
}
HEADER_SECRETS = ["sk_live_SECRET123", "SECRET456", "SECRET789", "U0VDUkVUUFJPWFk=", "SECRET000"]
RESPONSE_SECRET = "SECRETCOOKIE"  # the receiver's Set-Cookie
URL_SECRET = "SECRETURL"  # a token in the URL's query string


@pytest.fixture
def secret_pattern(settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "SECRET_HEADER_PATTERNS": [r"x-acme-.*"]}


@pytest.fixture
def captured_logs():
    """Every log record at DEBUG, through the production console handler's filter, formatted plain and JSON."""
    console = django_settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["mask_secrets"]  # what production logs go through
    streams = {"plain": io.StringIO(), "json": io.StringIO()}
    formatters = {
        "plain": logging.Formatter(django_settings.LOGGING["formatters"]["plain"]["format"]),
        "json": JsonFormatter(),
    }
    handlers = []
    for name, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.addFilter(MaskSecretsFilter())
        handler.setFormatter(formatters[name])
        handlers.append(handler)
    root, noisy = logging.getLogger(), [logging.getLogger("urllib3"), logging.getLogger("callbacks")]
    saved = [(logger, logger.level) for logger in [root, *noisy]]
    for logger in [root, *noisy]:
        logger.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    yield streams
    for handler in handlers:
        root.removeHandler(handler)
    for logger, level in saved:
        logger.setLevel(level)


def deliver_until_done(worker, task_id):
    for _ in range(5):
        for claim in leases.claim_due(limit=100, now=timezone.now() + timezone.timedelta(seconds=5)):
            worker.deliver_lane(claim.token, claim.task_ids)
        assert worker.wait_idle(timeout=30)
        if CallbackTask.objects.get(pk=task_id).is_final:
            return
    raise AssertionError("the task did not finish")


def database_text(exclude=()) -> str:
    """Every row of every table the project and its libraries keep, as text."""
    dumps = []
    for model in apps.get_models():
        if model in exclude or model._meta.proxy:
            continue
        dumps.append(json.dumps(list(model.objects.values()), default=str))
    return "\n".join(dumps)


@pytest.mark.django_db(transaction=True)
def test_secrets_are_sent_but_never_kept_or_shown(api, receiver, secret_pattern, captured_logs):
    receiver.respond = lambda req: Reply(
        status=503 if req.seq == 1 else 200, headers={"Set-Cookie": f"rsession={RESPONSE_SECRET}; HttpOnly"}
    )
    created = api.post(
        "/api/v1/callbacks/",
        {
            "url": f"{receiver.url}/hook?token={URL_SECRET}&page=2",
            "headers": HEADERS,
            "body": {"order": 1},
            "backoff": {"initial_seconds": 0.01, "max_seconds": 0.02},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]
    worker = DeliveryWorker(concurrency=4, flush_seconds=0.01, name="masking-worker")
    try:
        deliver_until_done(worker, task_id)
    finally:
        worker.shutdown(timeout=10)

    # The receiver got every secret in clear, twice.
    assert len(receiver.received) == 2
    for got in receiver.received:
        for name, value in HEADERS.items():
            assert got.headers[name.lower()] == value
        assert got.path == f"/hook?token={URL_SECRET}&page=2"

    # Stored: the attempt rows hold masked snapshots, and nothing but the task row (which must send
    # them) holds any secret at all.
    executions = list(TaskExecution.objects.filter(task_id=task_id).order_by("attempt"))
    assert [e.outcome for e in executions] == ["http_5xx", "success"]
    for execution in executions:
        assert execution.request_headers["Authorization"] == masking.MASK
        assert execution.request_headers["X-Acme-Private"] == masking.MASK
        assert execution.request_headers["X-Plain"] == "visible-value"
        assert execution.response_headers["Set-Cookie"] == masking.MASK
        assert "page=2" in execution.request_url
    stored = database_text(exclude=(CallbackTask,))
    for secret in [*HEADER_SECRETS, RESPONSE_SECRET, URL_SECRET]:
        assert secret not in stored, secret

    # Shown through the API: the task (headers), its attempts, its events, lists, the audit log.
    responses = {
        path: api.get(path)
        for path in (
            f"/api/v1/callbacks/{task_id}/",
            f"/api/v1/callbacks/{task_id}/executions/",
            f"/api/v1/callbacks/{task_id}/events/",
            "/api/v1/callbacks/",
            "/api/v1/audit/",
        )
    }
    responses["create"] = created
    for path, response in responses.items():
        assert response.status_code in (200, 201), path
        text = response.content.decode()
        for secret in [*HEADER_SECRETS, RESPONSE_SECRET]:
            assert secret not in text, (path, secret)
    shown = responses[f"/api/v1/callbacks/{task_id}/"].json()["headers"]
    assert shown["Cookie"] == masking.MASK and shown["X-Plain"] == "visible-value"
    attempts = responses[f"/api/v1/callbacks/{task_id}/executions/"].content.decode()
    assert URL_SECRET not in attempts and "page=2" in attempts
    # The task's own URL is shown to its owner as given (documented in callbacks/masking.py).

    # Logged: urllib3's request lines (which carry the URL) and our attempt lines, plain and JSON.
    for mode, stream in captured_logs.items():
        text = stream.getvalue()
        assert "attempt 2 of" in text and "/hook?token=" in text, mode  # the logs did cover the delivery
        for secret in [*HEADER_SECRETS, RESPONSE_SECRET, URL_SECRET]:
            assert secret not in text, (mode, secret)
    for line in captured_logs["json"].getvalue().splitlines():
        json.loads(line)


@pytest.mark.django_db(transaction=True)
def test_admin_pages_show_masked_values(api, receiver, secret_pattern):
    receiver.respond = Reply(headers={"Set-Cookie": f"rsession={RESPONSE_SECRET}"})
    created = api.post(
        "/api/v1/callbacks/", {"url": receiver.url + "/hook", "headers": HEADERS}, format="json"
    )
    task_id = created.json()["id"]
    worker = DeliveryWorker(concurrency=2, flush_seconds=0.01, name="admin-masking")
    try:
        deliver_until_done(worker, task_id)
    finally:
        worker.shutdown(timeout=10)
    execution = TaskExecution.objects.get(task_id=task_id)
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789")
    from django.test import Client

    browser = Client()
    browser.force_login(admin_user)
    pages = [
        f"/admin/callbacks/callbacktask/{task_id}/change/",
        f"/admin/callbacks/taskexecution/{execution.pk}/change/",
        "/admin/callbacks/taskexecution/",
        "/admin/callbacks/auditlog/",
    ]
    for page in pages:
        response = browser.get(page)
        assert response.status_code == 200, page
        text = response.content.decode()
        for secret in [*HEADER_SECRETS, RESPONSE_SECRET]:
            assert secret not in text, (page, secret)
    task_page = browser.get(pages[0]).content.decode()
    assert "visible-value" in task_page and masking.MASK in task_page


@pytest.mark.parametrize(
    "name", ["x-functions-key", "Ocp-Apim-Subscription-Key", "X-Access-Key", "Private-Key", "X-Secret-Key"]
)
def test_common_key_headers_are_secret(name):
    assert masking.is_secret_header(name)
    assert masking.mask_headers({name: "k-123"}) == {name: masking.MASK}


@pytest.mark.parametrize("name", ["Idempotency-Key", "X-Request-Id", "Content-Type", "X-Ordering-Key"])
def test_keys_that_are_no_credentials_stay_visible(name):
    assert not masking.is_secret_header(name)


def test_configured_patterns_apply_at_call_time(settings):
    assert not masking.is_secret_header("X-Acme-Private")
    settings.CALLBACKS = {**settings.CALLBACKS, "SECRET_HEADER_PATTERNS": [r"x-acme-.*", r"session-id"]}
    assert masking.is_secret_header("X-ACME-Private")
    assert masking.is_secret_header("Session-Id")
    assert not masking.is_secret_header("Session-Ids")  # whole names only
    settings.CALLBACKS = {**settings.CALLBACKS, "SECRET_HEADER_PATTERNS": []}
    assert not masking.is_secret_header("X-Acme-Private")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("https://h.example/cb?token=abc123&page=2", "https://h.example/cb?token=********&page=2"),
        ("https://h.example/cb?page=2&access_token=abc", "https://h.example/cb?page=2&access_token=********"),
        ("GET /x?api_key=k1;sig=s2 HTTP/1.1", "GET /x?api_key=********;sig=******** HTTP/1.1"),
        ("https://h.example/cb?key=abc#frag", "https://h.example/cb?key=********#frag"),
        ("https://h.example/cb?monkey=banana", "https://h.example/cb?monkey=banana"),
        ("https://h.example/cb?access_key=AKIA1&x=1", "https://h.example/cb?access_key=********&x=1"),
        ("https://h.example/cb?subscription-key=s3", "https://h.example/cb?subscription-key=********"),
        ("https://h.example/cb?page=2", "https://h.example/cb?page=2"),
    ],
)
def test_secret_query_parameters_are_masked_in_text(text, kept):
    assert masking.mask_text(text) == kept


def test_mask_data_for_records_of_any_shape():
    record = {
        "headers": {"Authorization": "Bearer x", "X-Plain": "p"},
        "signing_secret": "whsec_abcdefghijkl",
        "previous_signing_secret": "",
        "notes": ["call https://h.example/?token=t0k3n", 3, None],
        "nested": {"password": "hunter2", "count": 2},
    }
    assert masking.mask_data(record) == {
        "headers": {"Authorization": masking.MASK, "X-Plain": "p"},
        "signing_secret": masking.MASK,
        "previous_signing_secret": "",
        "notes": [f"call https://h.example/?token={masking.MASK}", 3, None],
        "nested": {"password": masking.MASK, "count": 2},
    }


@pytest.mark.parametrize("mode", ["plain", "json"])
def test_log_extras_and_tracebacks_are_masked(mode):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskSecretsFilter())
    handler.setFormatter(JsonFormatter() if mode == "json" else logging.Formatter("%(message)s %(target)s"))
    logger = logging.getLogger("tests.callbacks.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        try:
            raise RuntimeError("could not reach https://h.example/cb?token=SECRETEXC")
        except RuntimeError:
            logger.exception(
                "failed with Bearer SECRETMSG", extra={"target": "https://h.example/?api_key=SECRETEXTRA"}
            )
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError" in text and "h.example/cb?token=" in text  # the traceback is kept, masked
    for secret in ("SECRETEXC", "SECRETMSG", "SECRETEXTRA"):
        assert secret not in text, secret


def test_a_pem_private_key_in_text_is_masked_to_its_end():
    _, key = client_pem()
    masked = masking.mask_text(f"the receiver echoed: {key} and more")
    body = key.strip().splitlines()[1]
    assert body not in masked and masked.startswith("the receiver echoed: -----BEGIN")
    assert masked.endswith(" and more")
    assert masking.mask_text("cut short -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE") == (
        "cut short -----BEGIN EC PRIVATE KEY-----" + masking.MASK
    )
