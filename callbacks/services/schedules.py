"""Writes on cron schedules: create, update, delete, pause, resume, fire now, and the dispatcher's fire.

Firing happens in the leading dispatcher's step (`fire_due`): each due schedule creates one task from its
template and advances `next_fire_at` in the same transaction, conditional on the value it read, so a
fire happens once even with a standby dispatcher or after a restart; at most one task per schedule per
step.

Every input is checked here (callbacks.domain.schedule's validators), so the API, commands and admin
refuse the same things: a bad cron expression, time zone or template is a 400 naming the field.
"""

import logging
from datetime import datetime

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from callbacks import conf
from callbacks.domain import schedule as schedule_rules
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import CallbackSchedule, CallbackTask, MissedPolicy, Tenant
from callbacks.queues import DEFAULT_QUEUE
from callbacks.services.audit import audit_record
from callbacks.services.queues import queue_check
from callbacks.services.tasks import task_create
from callbacks.wakeup import notify_dispatcher

logger = logging.getLogger(__name__)

EDITABLE = ("name", "cron", "timezone", "task_template", "missed_policy", "paused")
SCHEDULER_ACTOR = "scheduler"
FIRE_BATCH = 100
NAME_TAKEN = "the tenant has a schedule of this name already"


def fire_due(*, now: datetime | None = None, limit: int = FIRE_BATCH) -> int:
    """Fire every schedule due at `now` (the leading dispatcher calls this each step). Returns the
    number of tasks created."""
    now = now or timezone.now()
    due = list(
        CallbackSchedule.objects.filter(paused=False, next_fire_at__lte=now)
        .order_by("next_fire_at")
        .values_list("id", flat=True)[:limit]
    )
    created = 0
    for schedule_id in due:
        try:
            created += fire_one(schedule_id=schedule_id, now=now)
        except DatabaseError:
            raise
        except Exception:
            # One broken schedule must not stop the others or dispatch; it is retried next step.
            logger.exception("firing schedule %s failed", schedule_id)
    return created


def fire_one(*, schedule_id, now: datetime) -> int:
    """Fire one due schedule once and advance it. Returns the tasks created (0 or 1)."""
    with transaction.atomic():
        # SKIP LOCKED: a schedule another dispatcher is firing is its business. Only the schedule's
        # row: locking the joined tenant would make every other schedule of the tenant look busy.
        schedule = (
            CallbackSchedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .filter(id=schedule_id, paused=False, next_fire_at__lte=now)
            .first()
        )
        if schedule is None:
            return 0  # another dispatcher holds it, or fired it already
        plan = schedule_rules.plan_fire(schedule, now=now)
        return schedule_fire(schedule=schedule, plan=plan, now=now)


class _LostRace(Exception):
    """Another dispatcher advanced the schedule first: undo this fire."""


def schedule_create(*, tenant: Tenant, data: dict, actor_type: str, actor: str) -> CallbackSchedule:
    """A new schedule, within the tenant's quota (SCHEDULES_PER_TENANT): one tenant's thousands of
    schedules would make the leader skip the fires of everyone else's."""
    values = _validated({"timezone": "UTC", "missed_policy": MissedPolicy.SKIP, "paused": False, **data})
    now = timezone.now()
    schedule = CallbackSchedule(tenant=tenant, created_at=now, updated_at=now, **values)
    schedule.next_fire_at = _first_fire(schedule, now)
    with transaction.atomic():
        # The tenant's row locked: two creations at once cannot both take the last place.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if CallbackSchedule.objects.filter(tenant=tenant).count() >= conf.get("SCHEDULES_PER_TENANT"):
            raise _quota_error()
        _save_unique(schedule, force_insert=True)
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=tenant,
            action="schedule.create",
            obj=schedule,
            before=None,
            after=_audit_state(schedule),
        )
        transaction.on_commit(notify_dispatcher)
    return schedule


def schedule_check(*, tenant: Tenant, data: dict, schedule: CallbackSchedule | None = None) -> dict:
    """The checks schedule_create (no `schedule`) or schedule_update would make on `data`, writing
    nothing: for forms that show every refusal on its field before anything is saved. The values
    cleaned, or ApplicationError naming the fields."""
    values = _validated(data)
    if schedule is None and CallbackSchedule.objects.filter(tenant=tenant).count() >= conf.get(
        "SCHEDULES_PER_TENANT"
    ):
        raise _quota_error()
    name = values.get("name")
    taken = CallbackSchedule.objects.filter(tenant=tenant, name=name)
    if schedule is not None:
        taken = taken.exclude(pk=schedule.pk)
    if name is not None and taken.exists():
        raise ApplicationError("Invalid input.", fields={"name": [NAME_TAKEN]})
    return values


def schedule_update(
    *, schedule: CallbackSchedule, data: dict, actor_type: str, actor: str
) -> CallbackSchedule:
    """Change some fields; the next fire is computed again from now when the timing changed."""
    values = _validated(data)
    with transaction.atomic():
        current = CallbackSchedule.objects.select_for_update().get(pk=schedule.pk)
        before = _audit_state(current)
        retimed = any(
            name in values and values[name] != getattr(current, name)
            for name in ("cron", "timezone", "paused")
        )
        for name, value in values.items():
            setattr(current, name, value)
        now = timezone.now()
        if retimed:
            current.next_fire_at = _first_fire(current, now)
        current.updated_at = now
        _save_unique(current)
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=current.tenant,
            action="schedule.update",
            obj=current,
            before=before,
            after=_audit_state(current),
        )
        transaction.on_commit(notify_dispatcher)
    return current


def schedule_delete(*, schedule: CallbackSchedule, actor_type: str, actor: str) -> None:
    """Tasks it created stay (their schedule link is cleared)."""
    with transaction.atomic():
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=schedule.tenant,
            action="schedule.delete",
            obj=schedule,
            before=_audit_state(schedule),
            after=None,
        )
        CallbackSchedule.objects.filter(pk=schedule.pk).delete()


def schedule_pause(*, schedule: CallbackSchedule, actor_type: str, actor: str) -> CallbackSchedule:
    """No fires until resumed; pausing a paused schedule changes nothing."""
    if schedule.paused:
        return schedule
    return schedule_update(schedule=schedule, data={"paused": True}, actor_type=actor_type, actor=actor)


def schedule_resume(*, schedule: CallbackSchedule, actor_type: str, actor: str) -> CallbackSchedule:
    """Fires again from now on; the fires that fell in the pause are not made up."""
    if not schedule.paused:
        return schedule
    return schedule_update(schedule=schedule, data={"paused": False}, actor_type=actor_type, actor=actor)


def schedule_fire_now(*, schedule: CallbackSchedule, actor_type: str, actor: str) -> CallbackTask:
    """One task from the template, due now, besides the cron's fires: the next fire stays where it
    is. Unlike a timed fire, which skips a refused template quietly, a refusal (the template no
    longer valid, its URL off the tenant's whitelist, its queue gone) is raised to the caller."""
    now = timezone.now()
    with transaction.atomic():
        task, _created = task_create(
            tenant=schedule.tenant,
            data=_fire_data(schedule, run_at=now),
            actor_type=actor_type,
            actor=actor,
        )
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=schedule.tenant,
            action="schedule.fire_now",
            obj=schedule,
            before=None,
            after={"task_id": str(task.pk)},
        )
    return task


def schedule_fire(*, schedule: CallbackSchedule, plan: schedule_rules.FirePlan, now: datetime) -> int:
    """Carry out one fire plan for a schedule locked by the caller: at most one task, and the
    schedule advanced only if nobody advanced it first (the whole fire is undone otherwise)."""
    try:
        with transaction.atomic():
            created = _create_fire_task(schedule, plan, now) if plan.fire_at is not None else 0
            advanced = CallbackSchedule.objects.filter(
                pk=schedule.pk, next_fire_at=schedule.next_fire_at
            ).update(
                next_fire_at=plan.next_fire_at,
                last_fired_at=plan.fire_at if created else schedule.last_fired_at,
                updated_at=now,
            )
            if advanced != 1:
                raise _LostRace
            if plan.missed:
                _audit_missed(schedule, plan)
    except _LostRace:
        return 0
    return created


def _create_fire_task(schedule: CallbackSchedule, plan: schedule_rules.FirePlan, now: datetime) -> int:
    try:
        data = _fire_data(schedule, run_at=now if plan.catch_up else plan.fire_at)
    except ApplicationError as exc:
        # The template was valid when saved; a rule changed since (e.g. the SSRF guard). Skip this
        # fire rather than retry it every step.
        logger.warning("schedule %s: template no longer valid, fire skipped: %s", schedule.id, exc.fields)
        return 0
    # The same fire never makes two tasks, whatever happens between creating and advancing.
    data["idempotency_key"] = f"schedule:{schedule.id}:{plan.fire_at.isoformat()}"
    try:
        _task, created = task_create(
            tenant=schedule.tenant,
            data=data,
            actor_type=ActorType.SYSTEM,
            actor=SCHEDULER_ACTOR,
            strict_idempotency=False,  # a catch-up fire made again has another run_at
        )
    except ApplicationError as exc:
        logger.warning("schedule %s: fire refused, skipped: %s", schedule.id, exc.message)
        return 0
    return 1 if created else 0


def _fire_data(schedule: CallbackSchedule, *, run_at: datetime) -> dict:
    """The callback one fire of `schedule` registers; ApplicationError when its template is refused."""
    data = schedule_rules.validate_template(schedule.task_template)
    data["run_at"] = run_at
    data["schedule"] = schedule
    return data


def _audit_missed(schedule: CallbackSchedule, plan: schedule_rules.FirePlan) -> None:
    audit_record(
        actor_type=ActorType.SYSTEM,
        actor=SCHEDULER_ACTOR,
        tenant=schedule.tenant,
        action="schedule.missed",
        obj=schedule,
        before={"next_fire_at": schedule.next_fire_at.isoformat()},
        after={
            "missed_policy": schedule.missed_policy,
            "missed": plan.missed,
            "caught_up": plan.catch_up,
            "next_fire_at": plan.next_fire_at.isoformat() if plan.next_fire_at else None,
        },
    )


def _validated(data: dict) -> dict:
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ApplicationError("Invalid input.", fields={name: ["unknown field"] for name in unknown})
    values = dict(data)
    errors = {}
    checks = {
        "cron": schedule_rules.validate_cron,
        "timezone": schedule_rules.validate_timezone,
        "task_template": _template,
        "missed_policy": _missed_policy,
        "name": _name,
        "paused": _paused,
    }
    for name, check in checks.items():
        if name in values:
            try:
                values[name] = check(values[name])
            except ApplicationError as exc:
                errors.update(exc.fields)
    if errors:
        raise ApplicationError("Invalid input.", fields=errors)
    return values


def _template(template) -> dict:
    cleaned = schedule_rules.validate_template(template)
    try:
        queue_check([cleaned.get("queue", DEFAULT_QUEUE)])
    except ApplicationError as exc:
        raise ApplicationError(
            "Invalid input.", code=exc.code, fields={"task_template": exc.fields}
        ) from None
    return template  # stored as given: validated again at each fire, against the rules of the day


def _missed_policy(value) -> str:
    if value not in MissedPolicy.values:
        raise ApplicationError(
            "Invalid input.", fields={"missed_policy": [f"must be one of {', '.join(MissedPolicy.values)}"]}
        )
    return value


def _name(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ApplicationError("Invalid input.", fields={"name": ["1 to 200 characters"]})
    return value.strip()


def _paused(value) -> bool:
    if not isinstance(value, bool):
        raise ApplicationError("Invalid input.", fields={"paused": ["must be true or false"]})
    return value


def _quota_error() -> ApplicationError:
    quota = conf.get("SCHEDULES_PER_TENANT")
    return ApplicationError(
        "Invalid input.",
        code="schedule_quota",
        fields={"schedules": [f"at most {quota} schedules per tenant; delete one first"]},
    )


def _first_fire(schedule: CallbackSchedule, now: datetime) -> datetime | None:
    if schedule.paused:
        return None
    return schedule_rules.next_fire_after(schedule, now)


def _save_unique(schedule: CallbackSchedule, **kwargs) -> None:
    try:
        with transaction.atomic():
            schedule.save(**kwargs)
    except IntegrityError:
        raise ApplicationError("Invalid input.", fields={"name": [NAME_TAKEN]}) from None


def _audit_state(schedule: CallbackSchedule) -> dict:
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "missed_policy": schedule.missed_policy,
        "paused": schedule.paused,
        "task_template": schedule.task_template,
        "next_fire_at": schedule.next_fire_at.isoformat() if schedule.next_fire_at else None,
    }
