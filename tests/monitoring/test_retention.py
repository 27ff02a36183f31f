"""purge_history and the daily purge: exactly what retention allows goes, in batches; the daily
run is a django-q2 schedule, not the dispatcher's job."""

import ast
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage

from callbacks.delivery.dispatcher import Dispatcher
from callbacks.delivery.instruments.accounting import attempts_recorded
from callbacks.models import AttemptRollup, Heartbeat, TaskExecution, TaskStatus
from monitoring import retention
from monitoring.apps import DAILY_PURGE, DAILY_PURGE_NAME, register_daily_purge
from monitoring.models import MaintenanceRun
from tests.factories import make_attempts, make_monitored_task


def _attempts(task, *, days_ago, count=3, seed=0):
    started = timezone.now() - timedelta(days=days_ago)
    attempts = make_attempts(task=task, count=count, seed=seed, started_at=started, spread_seconds=60)
    for attempt in attempts:
        attempt.response_body = "a response body"
    saved = TaskExecution.objects.bulk_create(attempts)
    attempts_recorded(saved, {task.id: task})
    return {attempt.pk for attempt in saved}


@pytest.fixture
def history(tenant):
    done = make_monitored_task(tenant=tenant, status=TaskStatus.SUCCEEDED)
    dead = make_monitored_task(tenant=tenant, status=TaskStatus.DEAD)
    retrying = make_monitored_task(tenant=tenant, status=TaskStatus.RETRYING)
    now = timezone.now()
    Heartbeat.objects.create(role="worker", name="gone", seen_at=now - timedelta(days=2))
    Heartbeat.objects.create(role="worker", name="here", seen_at=now)
    return {
        "old_final": _attempts(done, days_ago=40, seed=1) | _attempts(dead, days_ago=31, seed=2),
        "old_open": _attempts(retrying, days_ago=40, seed=3),  # its task is not finished: kept
        "middle": _attempts(done, days_ago=10, seed=4),  # kept, body blanked
        "recent": _attempts(done, days_ago=1, seed=5),  # untouched
    }


def _bodies(ids):
    return set(TaskExecution.objects.filter(pk__in=ids).values_list("response_body", flat=True))


def test_purge_history_removes_exactly_what_it_should(history):
    rollups_before = AttemptRollup.objects.count()
    old_rollups = AttemptRollup.objects.filter(period_start__lt=timezone.now() - timedelta(days=30)).count()
    out, err = StringIO(), StringIO()
    call_command(
        "purge_history",
        "--older-than",
        "30",
        "--bodies-older-than",
        "7",
        "--batch-size",
        "2",
        stdout=out,
        stderr=err,
    )

    remaining = set(TaskExecution.objects.values_list("pk", flat=True))
    assert remaining == history["old_open"] | history["middle"] | history["recent"]
    assert _bodies(history["middle"]) == {""}
    assert _bodies(history["old_open"]) == {""}
    assert _bodies(history["recent"]) == {"a response body"}
    assert old_rollups > 0
    assert AttemptRollup.objects.count() == rollups_before - old_rollups
    assert list(Heartbeat.objects.values_list("name", flat=True)) == ["here"]

    text = out.getvalue()
    assert "response bodies of attempts before" in text
    assert f"executions {len(history['old_final'])}" in text
    assert f"bodies {len(history['middle']) + len(history['old_open'])}" in text
    for step in ("executions", "rollups", "bodies", "heartbeats"):
        assert f"{step}: 100%" in err.getvalue()  # tqdm's progress bars


def test_dry_run_changes_nothing(history):
    executions, rollups = TaskExecution.objects.count(), AttemptRollup.objects.count()
    out = StringIO()
    call_command("purge_history", "--older-than", "30", "--dry-run", stdout=out)
    assert TaskExecution.objects.count() == executions
    assert AttemptRollup.objects.count() == rollups
    assert _bodies(history["middle"]) == {"a response body"}
    assert "would change: executions 6, rollups " in out.getvalue()
    assert f"bodies {executions - len(history['recent'])}, heartbeats 1" in out.getvalue()


def test_a_second_run_finds_nothing_left(history):
    retention.purge_run(older_than_days=30, bodies_older_than_days=7)
    again = retention.purge_run(older_than_days=30, bodies_older_than_days=7)
    assert again == {"executions": 0, "rollups": 0, "bodies": 0, "heartbeats": 0}


def test_the_daily_purge_runs_once_a_day(tenant):
    task = make_monitored_task(tenant=tenant, status=TaskStatus.SUCCEEDED)
    old = _attempts(task, days_ago=45)
    now = timezone.now()
    assert retention.purge_due(now)

    done = retention.purge_daily(now)

    assert done is not None and done["executions"] == len(old)
    assert not TaskExecution.objects.filter(pk__in=old).exists()
    assert MaintenanceRun.objects.get(name=retention.RUN_NAME).finished_at is not None
    assert not retention.purge_due(now + timedelta(hours=23))
    assert retention.purge_daily(now + timedelta(hours=23)) is None  # the next hourly start
    assert retention.purge_due(now + timedelta(days=1))


def test_migrate_registers_the_hourly_schedule_of_the_daily_purge_once(db):
    """pytest-django's migrate ran the post_migrate hook; running it again changes nothing."""
    schedules = Schedule.objects.filter(name=DAILY_PURGE_NAME)
    assert schedules.count() == 1
    schedule = schedules.get()
    assert import_string(schedule.func) is retention.purge_daily
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1
    assert schedule.cluster is None  # the default cluster's scheduler runs it
    assert ast.literal_eval(schedule.kwargs)["q_options"]["timeout"] > settings.Q_CLUSTER["timeout"]

    schedule.func = "somewhere.else"
    schedule.save()
    register_daily_purge(sender=apps.get_app_config("monitoring"), apps=apps)

    assert Schedule.objects.filter(name=DAILY_PURGE_NAME).get().func == DAILY_PURGE["func"]


@pytest.mark.django_db(transaction=True)  # the scheduler closes old connections first
def test_the_django_q2_scheduler_starts_the_purge_and_the_dispatcher_does_not(tenant):
    task = make_monitored_task(tenant=tenant, status=TaskStatus.SUCCEEDED)
    old = _attempts(task, days_ago=45)
    Dispatcher()._housekeeping()  # the leader's loop, once: a heartbeat only
    Dispatcher().step()
    assert not MaintenanceRun.objects.exists() and TaskExecution.objects.filter(pk__in=old).exists()

    Schedule.objects.filter(name=DAILY_PURGE_NAME).update(next_run=timezone.now() - timedelta(seconds=1))
    broker = get_broker()
    scheduler(broker=broker)  # what the cluster's sentinel calls about every 30 s

    message = broker.dequeue()
    assert message, "the scheduler queued no task"
    _ack_id, payload = message[0]
    queued = SignedPackage.loads(payload)
    assert queued["func"] == DAILY_PURGE["func"] and queued["timeout"] == 21600
    import_string(queued["func"])(*queued["args"], **queued["kwargs"])  # as a worker runs it
    assert not TaskExecution.objects.filter(pk__in=old).exists()
