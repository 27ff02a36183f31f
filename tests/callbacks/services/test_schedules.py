"""Firing schedules: one task per fire, exactly once, and missed fires after downtime by policy."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.delivery.dispatcher import Dispatcher
from callbacks.domain import schedule as scheduling
from callbacks.errors import ApplicationError
from callbacks.models import AuditLog, CallbackSchedule, CallbackTask, QueueState, TaskStatus
from callbacks.services.schedules import (
    fire_due,
    schedule_check,
    schedule_create,
    schedule_fire,
    schedule_fire_now,
)
from callbacks.services.tasks import task_create
from tests.factories import declare_queues, make_task

URL = "http://127.0.0.1:9/hook"
TEMPLATE = {"url": URL, "body": {"report": "daily"}, "priority": 7, "queue": "reports"}


@pytest.fixture(autouse=True)
def reports_queue(db):
    declare_queues("reports")


def new_schedule(tenant, *, cron="0 * * * *", due_seconds_ago=1.0, **fields):
    schedule = schedule_create(
        tenant=tenant,
        data={"name": fields.pop("name", "hourly"), "cron": cron, "task_template": TEMPLATE, **fields},
        actor_type="user",
        actor="test",
    )
    at = timezone.now() - timedelta(seconds=due_seconds_ago)
    CallbackSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=at)
    schedule.refresh_from_db()
    return schedule


@pytest.mark.django_db
def test_a_due_schedule_creates_one_task_from_its_template_and_advances(tenant):
    schedule = new_schedule(tenant)
    fire_at = schedule.next_fire_at
    now = timezone.now()

    assert fire_due(now=now) == 1
    assert fire_due(now=now) == 0

    (task,) = CallbackTask.objects.all()
    assert task.schedule_id == schedule.id
    assert (task.url, task.priority, task.queue, task.payload) == (URL, 7, "reports", '{"report":"daily"}')
    assert task.status == TaskStatus.SCHEDULED
    assert task.run_at == fire_at  # due at its fire time: the lag is measured from there
    assert task.idempotency_key == f"schedule:{schedule.id}:{fire_at.isoformat()}"
    schedule.refresh_from_db()
    assert schedule.last_fired_at == fire_at
    assert schedule.next_fire_at == scheduling.next_fire_after(schedule, now)
    assert schedule.next_fire_at > now
    audit = AuditLog.objects.get(action="task.create")
    assert (audit.actor_type, audit.actor, audit.tenant_id) == ("system", "scheduler", tenant.id)


@pytest.mark.django_db
def test_schedules_not_due_or_paused_do_not_fire(tenant):
    new_schedule(tenant, name="later", due_seconds_ago=-30)
    paused = new_schedule(tenant, name="paused")
    CallbackSchedule.objects.filter(pk=paused.pk).update(paused=True)

    assert fire_due(now=timezone.now()) == 0
    assert not CallbackTask.objects.exists()


# A fixed moment: the last fire of "*/15 * * * *" before it (10:00) is 5 minutes old, past the grace.
NOW = datetime(2030, 1, 1, 10, 5, tzinfo=UTC)


def down_since(tenant, since, **fields):
    schedule = new_schedule(tenant, cron="*/15 * * * *", **fields)
    CallbackSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=since)
    schedule.refresh_from_db()
    return schedule


@pytest.mark.django_db
def test_skip_after_downtime_creates_nothing_and_jumps_to_the_next_future_fire(tenant):
    schedule = down_since(tenant, NOW - timedelta(hours=3, minutes=5), missed_policy="skip")

    assert fire_due(now=NOW) == 0

    assert not CallbackTask.objects.exists()
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2030, 1, 1, 10, 15, tzinfo=UTC)
    missed = AuditLog.objects.get(action="schedule.missed")
    assert missed.after["missed_policy"] == "skip" and missed.after["caught_up"] is False


@pytest.mark.django_db
def test_fire_once_after_downtime_creates_one_task_for_all_missed_fires(tenant):
    schedule = down_since(tenant, NOW - timedelta(days=30), missed_policy="fire_once")

    assert fire_due(now=NOW) == 1
    assert fire_due(now=NOW + timedelta(seconds=1)) == 0

    (task,) = CallbackTask.objects.all()
    assert task.run_at == NOW  # a catch-up is due when it is made
    schedule.refresh_from_db()
    assert schedule.next_fire_at == datetime(2030, 1, 1, 10, 15, tzinfo=UTC)
    assert AuditLog.objects.get(action="schedule.missed").after["caught_up"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["skip", "fire_once"])
def test_a_fire_late_by_less_than_the_grace_is_not_missed(tenant, policy):
    down_since(tenant, datetime(2030, 1, 1, 10, 0, tzinfo=UTC), missed_policy=policy)

    assert fire_due(now=datetime(2030, 1, 1, 10, 0, 50, tzinfo=UTC)) == 1

    assert CallbackTask.objects.get().run_at == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert not AuditLog.objects.filter(action="schedule.missed").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["skip", "fire_once"])
def test_a_late_step_fires_the_latest_fire_once_whatever_the_policy(tenant, policy):
    # Every 2 s, 9 s late: four fires are due, within the grace: one task, never a storm.
    schedule = new_schedule(tenant, cron="*/2 * * * * *", due_seconds_ago=9, missed_policy=policy)
    now = timezone.now()

    assert fire_due(now=now) == 1

    schedule.refresh_from_db()
    assert CallbackTask.objects.count() == 1
    assert schedule.next_fire_at > now
    assert now - timedelta(seconds=2) <= schedule.last_fired_at <= now


@pytest.mark.django_db
def test_a_fire_whose_task_exists_already_makes_no_second_task(tenant):
    schedule = new_schedule(tenant)
    key = f"schedule:{schedule.id}:{schedule.next_fire_at.isoformat()}"
    task_create(tenant=tenant, data={"url": URL, "idempotency_key": key}, actor_type="system", actor="t")

    assert fire_due(now=timezone.now()) == 0

    assert CallbackTask.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.next_fire_at > timezone.now()


@pytest.mark.django_db
def test_a_fire_that_lost_the_race_to_advance_is_undone(tenant):
    stale = new_schedule(tenant)
    CallbackSchedule.objects.filter(pk=stale.pk).update(next_fire_at=timezone.now() + timedelta(hours=1))
    now = timezone.now()
    plan = scheduling.FirePlan(
        fire_at=stale.next_fire_at, catch_up=False, missed=0, next_fire_at=now + timedelta(hours=2)
    )

    assert schedule_fire(schedule=stale, plan=plan, now=now) == 0

    assert not CallbackTask.objects.exists()  # the task made before the conditional update is rolled back
    assert CallbackSchedule.objects.get(pk=stale.pk).next_fire_at < now + timedelta(hours=2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_firers_fire_each_due_schedule_once(tenant):
    schedules = [new_schedule(tenant, name=f"s{n}") for n in range(10)]
    now = timezone.now()
    errors = []
    barrier = threading.Barrier(4)

    def firer():
        try:
            barrier.wait()
            fire_due(now=now)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=firer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert CallbackTask.objects.count() == 10
    assert set(CallbackTask.objects.values_list("schedule_id", flat=True)) == {s.id for s in schedules}


@pytest.mark.django_db
def test_a_template_no_longer_valid_skips_the_fire_and_still_advances(tenant):
    schedule = new_schedule(tenant)
    CallbackSchedule.objects.filter(pk=schedule.pk).update(task_template={"url": "ftp://nowhere/"})

    assert fire_due(now=timezone.now()) == 0

    assert not CallbackTask.objects.exists()
    schedule.refresh_from_db()
    assert schedule.next_fire_at > timezone.now()


@pytest.mark.django_db
def test_the_dispatcher_step_fires_and_claims_the_new_task_at_once(tenant):
    schedule = new_schedule(tenant)

    Dispatcher(name="test").step()

    task = CallbackTask.objects.get(schedule=schedule)
    assert task.status == TaskStatus.QUEUED


@pytest.mark.django_db
def test_the_dispatcher_sleeps_until_the_next_schedule_fire(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "DISPATCH_POLL_SECONDS": 5.0}
    dispatcher = Dispatcher(name="test")
    assert dispatcher._sleep_seconds() == 5.0

    new_schedule(tenant, due_seconds_ago=-1.5)

    assert 1.0 < dispatcher._sleep_seconds() <= 1.5


@pytest.mark.django_db
def test_a_schedule_falling_due_during_the_step_is_fired_without_waiting_for_the_poll(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "DISPATCH_POLL_SECONDS": 5.0}
    dispatcher = Dispatcher(name="test")
    dispatcher.step()
    schedule = new_schedule(tenant)
    # Due after the time the step fired schedules up to, and before now: the step did not see it.
    fired_up_to = dispatcher._claimed_at
    CallbackSchedule.objects.filter(pk=schedule.pk).update(
        next_fire_at=fired_up_to + (timezone.now() - fired_up_to) / 2
    )

    assert dispatcher._sleep_seconds() == 0.0


@pytest.mark.django_db
def test_due_tasks_held_back_do_not_make_the_dispatcher_spin(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "DISPATCH_POLL_SECONDS": 2.0}
    QueueState.objects.create(name="held", paused=True)
    make_task(tenant=tenant, url=URL, queue="held")
    first = make_task(tenant=tenant, url=URL, ordering_key="k", status=TaskStatus.RETRYING)
    CallbackTask.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    make_task(tenant=tenant, url=URL, ordering_key="k")  # due, waiting behind `first`

    assert Dispatcher(name="test")._sleep_seconds() == 2.0


# --- fire now and the checks a form makes first -----------------------------------------------------


@pytest.mark.django_db
def test_fire_now_creates_one_task_due_now_and_leaves_the_timing_alone(tenant):
    schedule = new_schedule(tenant, due_seconds_ago=-3600)  # next fire in an hour
    before = (schedule.next_fire_at, schedule.last_fired_at)

    task = schedule_fire_now(schedule=schedule, actor_type="user", actor="ops")

    assert CallbackTask.objects.get() == task
    assert (task.schedule_id, task.url, task.priority, task.queue) == (schedule.pk, URL, 7, "reports")
    assert abs((task.run_at - timezone.now()).total_seconds()) < 5
    schedule.refresh_from_db()
    assert (schedule.next_fire_at, schedule.last_fired_at) == before
    assert AuditLog.objects.filter(action="schedule.fire_now", actor="ops").count() == 1
    # A second press is a second callback: nothing keys the manual fires together.
    schedule_fire_now(schedule=schedule, actor_type="user", actor="ops")
    assert CallbackTask.objects.count() == 2


@pytest.mark.django_db
def test_fire_now_raises_what_a_timed_fire_would_skip(tenant):
    schedule = new_schedule(tenant)
    QueueState.objects.filter(name="reports").delete()

    with pytest.raises(ApplicationError) as refused:
        schedule_fire_now(schedule=schedule, actor_type="user", actor="ops")

    assert "queue" in str(refused.value.fields)
    assert not CallbackTask.objects.exists()
    assert not AuditLog.objects.filter(action="schedule.fire_now").exists()


@pytest.mark.django_db
def test_schedule_check_refuses_what_create_and_update_refuse_and_writes_nothing(tenant, settings):
    schedule = new_schedule(tenant, name="hourly")
    rows = list(CallbackSchedule.objects.values())
    audits = AuditLog.objects.count()

    with pytest.raises(ApplicationError) as bad:
        schedule_check(tenant=tenant, data={"cron": "not a cron", "timezone": "Nowhere/Else"})
    assert set(bad.value.fields) == {"cron", "timezone"}
    with pytest.raises(ApplicationError) as taken:
        schedule_check(tenant=tenant, data={"name": "hourly", "cron": "0 * * * *", "task_template": TEMPLATE})
    assert "name" in taken.value.fields
    # Its own name is no clash when a schedule is edited.
    schedule_check(tenant=tenant, data={"name": "hourly"}, schedule=schedule)
    settings.CALLBACKS = {**settings.CALLBACKS, "SCHEDULES_PER_TENANT": 1}
    with pytest.raises(ApplicationError) as full:
        schedule_check(tenant=tenant, data={"name": "other", "cron": "0 * * * *", "task_template": TEMPLATE})
    assert full.value.code == "schedule_quota"
    assert list(CallbackSchedule.objects.values()) == rows
    assert AuditLog.objects.count() == audits
