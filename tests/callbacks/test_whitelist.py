"""The whitelist at send time: outcome whitelist_denied, never retried, no connection made; a change reaches
running processes within the cache's TTL."""

import pytest

from callbacks import whitelist
from callbacks.delivery.claim import leases
from callbacks.delivery.executor import send_attempt
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import CallbackTask, Outcome, TaskExecution, TaskStatus, UrlWhitelistEntry
from callbacks.services.whitelist import whitelist_entry_delete
from tests.factories import make_task
from tests.processes import wait_until


def test_a_listed_target_is_sent(enforcing, receiver):
    enforcing.add("127.0.0.1", port=receiver.port, path_prefix="/in")
    result = send_attempt(make_task(tenant=enforcing, url=receiver.url + "/in/1"), attempt=1)
    assert result.outcome == Outcome.SUCCESS
    assert len(receiver.received) == 1


def test_an_entry_removed_after_creation_stops_the_send(enforcing, receiver):
    entry = enforcing.add("127.0.0.1", port=receiver.port)
    task = make_task(tenant=enforcing, url=receiver.url + "/hook")
    whitelist_entry_delete(entry=entry, actor_type="user", actor="test")
    whitelist.forget(enforcing.pk)  # as the commit hook does (this test runs inside one transaction)

    result = send_attempt(task, attempt=1)

    assert result.outcome == Outcome.WHITELIST_DENIED
    assert result.retryable is False
    assert result.status_code is None
    assert result.error.startswith("whitelist denied: ") and "no enabled entries" in result.error
    assert receiver.received == []


def test_denied_before_any_connection(enforcing, silent_listener):
    enforcing.add("127.0.0.1", port=silent_listener.port, path_prefix="/ok")
    task = make_task(tenant=enforcing, url=f"http://127.0.0.1:{silent_listener.port}/elsewhere")
    assert send_attempt(task, attempt=1).outcome == Outcome.WHITELIST_DENIED
    assert silent_listener.connections() == 0


def test_enforcement_switched_on_later_applies_to_queued_work(tenant, receiver):
    task = make_task(tenant=tenant, url=receiver.url)
    tenant.enforce_whitelist = True
    tenant.save()
    assert send_attempt(task, attempt=1).outcome == Outcome.WHITELIST_DENIED
    assert receiver.received == []


def test_a_change_reaches_a_process_within_the_ttl(enforcing, receiver, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "WHITELIST_CACHE_SECONDS": 0.3}
    entry = enforcing.add("127.0.0.1", port=receiver.port)
    task = make_task(tenant=enforcing, url=receiver.url)
    assert send_attempt(task, attempt=1).outcome == Outcome.SUCCESS
    # Removed by another process: this one is not told, and goes on with its cached list for a moment...
    UrlWhitelistEntry.objects.filter(pk=entry.pk).delete()
    assert whitelist.cached_patterns(enforcing) != ()
    # ...until its cache expires.
    wait_until(
        lambda: send_attempt(task, attempt=2).outcome == Outcome.WHITELIST_DENIED,
        timeout=10,
        message="the removal to take effect",
    )


def test_the_cache_spares_the_database(enforcing, receiver, django_assert_num_queries):
    enforcing.add("127.0.0.1", port=receiver.port)
    task = make_task(tenant=enforcing, url=receiver.url)
    send_attempt(task, attempt=1)
    with django_assert_num_queries(0):
        for attempt in range(2, 12):
            assert send_attempt(task, attempt=attempt).outcome == Outcome.SUCCESS


@pytest.mark.django_db(transaction=True)
def test_the_worker_records_a_denial_as_failed_without_retry(tenant, receiver):
    from callbacks.services.whitelist import whitelist_enforce_set, whitelist_entry_create

    whitelist_entry_create(
        tenant=tenant, host="127.0.0.1", port=receiver.port, path_prefix="/ok", actor_type="user", actor="t"
    )
    whitelist_enforce_set(tenant=tenant, enforce=True, actor_type="user", actor="t")
    allowed = make_task(tenant=tenant, url=receiver.url + "/ok", max_retries=3)
    denied = make_task(tenant=tenant, url=receiver.url + "/not-ok", max_retries=3)
    worker = DeliveryWorker(concurrency=4, flush_seconds=0.01, name="whitelist-worker")
    try:
        for claim in leases.claim_due(limit=10):
            worker.deliver_lane(claim.token, claim.task_ids)
        assert worker.wait_idle(timeout=30)
    finally:
        worker.shutdown(timeout=10)

    assert [r.path for r in receiver.received] == ["/ok"]
    denied.refresh_from_db()
    assert denied.status == TaskStatus.FAILED and denied.attempts == 1
    assert denied.last_outcome == Outcome.WHITELIST_DENIED
    execution = TaskExecution.objects.get(task=denied)
    assert execution.outcome == Outcome.WHITELIST_DENIED and "whitelist denied" in execution.error
    assert CallbackTask.objects.get(pk=allowed.pk).status == TaskStatus.SUCCEEDED


@pytest.mark.parametrize("spelling", ["LocalHost.", "ｌｏｃａｌｈｏｓｔ", "ＬＯＣＡＬＨＯＳＴ."])
def test_the_host_admitted_is_the_host_sent(enforcing, receiver, spelling):
    """The whitelist and the sender spell a host alike: what the entry admits is what is connected to
    and named in Host."""
    enforcing.add("localhost", port=receiver.port, path_prefix="/in")
    task = make_task(tenant=enforcing, url=f"http://{spelling}:{receiver.port}/in/1")

    result = send_attempt(task, attempt=1)

    assert (result.outcome, result.status_code) == (Outcome.SUCCESS, 200)
    assert receiver.wait_for(1)[0].headers["host"] == f"localhost:{receiver.port}"


def test_an_entry_for_strasse_does_not_admit_strasse_with_sharp_s(enforcing):
    enforcing.add("strasse.example.com")
    task = make_task(tenant=enforcing, url="https://straße.example.com/hook")

    result = send_attempt(task, attempt=1)

    assert result.outcome == Outcome.WHITELIST_DENIED
    assert "host xn--strae-oqa.example.com is not on" in result.error
