"""Cron schedules: what a valid one is, and when it fires.

Expressions are croniter's: 5 fields (minute hour day month weekday), or 6 with a seconds field
FIRST ("*/2 * * * * *": every two seconds), for short schedules and tests. Times are computed in
the schedule's IANA time zone on the local wall clock and converted to UTC, so "30 2 * * *" stays
at 02:30 local time through the year. Across daylight-saving changes:

- a wall time that does not exist (clocks jump forward over it) fires at the same distance after
  the jump (02:30 -> 03:30 when 02:00 becomes 03:00), once; a time the expression reaches anyway
  (every hour: 03:30 is a fire too) is not fired twice;
- a wall time that occurs twice (clocks go back) fires once, the first time, unless the
  expression runs every hour: then it keeps its interval and fires in both passes.

Fires missed while no dispatcher ran follow the schedule's missed_policy (`plan_fire`): `skip` creates
nothing for them, `fire_once` one task for all of them. Firing itself is callbacks.services.schedules'.
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import CroniterBadDateError, CroniterError, croniter
from django.conf import settings
from django.utils import timezone

from callbacks.domain.callback import clean_callback
from callbacks.domain.vocabulary import MissedPolicy
from callbacks.errors import ApplicationError

# A fire later than this is "missed" (the dispatcher was down) and follows missed_policy; a fire
# within it is merely late (a busy step, a dispatcher taking over) and goes out as usual.
MISFIRE_GRACE = timedelta(seconds=60)
# Far more than any daylight-saving shift (the largest in use is 2 h): how far back to look for
# wall times whose instants lie after a moment near a change of offset.
_DST_MARGIN = timedelta(hours=3)
# A template carries everything a callback has except what makes no sense repeated.
TEMPLATE_FORBIDDEN = {
    "run_at": "not allowed in a template: each fire is due at its fire time",
    "delay_seconds": "not allowed in a template: each fire is due at its fire time",
    "idempotency_key": "not allowed in a template: every fire would repeat the first task",
}


# --- validation ---------------------------------------------------------------------------------


def validate_cron(expression) -> str:
    """The expression, whitespace normalised; ApplicationError naming `cron` when it is not one we accept."""
    if not isinstance(expression, str) or not expression.strip():
        raise _invalid("cron", "a cron expression is required")
    normalised = " ".join(expression.split())
    fields = normalised.split(" ")
    if len(fields) not in (5, 6):
        raise _invalid(
            "cron", "must have 5 fields (minute hour day month weekday), or 6 with a seconds field first"
        )
    seconds = len(fields) == 6
    if not croniter.is_valid(normalised, second_at_beginning=seconds):
        raise _invalid("cron", f"{normalised!r} is not a valid cron expression")
    try:
        croniter(normalised, datetime(2000, 1, 1), second_at_beginning=seconds).get_next(datetime)
    except (CroniterError, ValueError, KeyError):
        raise _invalid("cron", f"{normalised!r} never fires") from None
    shortest = shortest_interval_seconds(normalised)
    least = settings.CALLBACKS["SCHEDULE_MIN_INTERVAL_SECONDS"]
    if shortest < least:
        raise _invalid("cron", f"fires every {shortest:g} s at times; at least {least} s between fires")
    return normalised


# Fires looked at for the shortest interval: enough to see every minute of an hour, or a day's hours.
_INTERVAL_SAMPLE = 200


def shortest_interval_seconds(cron: str) -> float:
    """The shortest time between two consecutive fires of a valid expression, over its first fires
    from a fixed start (in UTC: a daylight-saving change can only lengthen an interval or repeat an
    hour, which plan_fire handles)."""
    seconds = len(cron.split()) == 6
    fires = croniter(cron, datetime(2000, 1, 1), second_at_beginning=seconds)
    previous = fires.get_next(datetime)
    shortest = float("inf")
    try:
        for _ in range(_INTERVAL_SAMPLE):
            current = fires.get_next(datetime)
            shortest = min(shortest, (current - previous).total_seconds())
            previous = current
    except CroniterBadDateError:
        pass  # an expression with a last date
    return shortest


def validate_timezone(name) -> str:
    if not isinstance(name, str) or name not in _zone_names():
        raise _invalid("timezone", f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin, UTC)")
    return name


@lru_cache(maxsize=1)
def _zone_names() -> frozenset:
    return frozenset(available_timezones()) | {"UTC"}


def validate_template(template) -> dict:
    """The template's callback as task_create accepts it (the domain's callback rules); ApplicationError
    naming `task_template` and the fields inside it otherwise."""
    if not isinstance(template, dict):
        raise _invalid("task_template", "must be an object with a callback's fields")
    forbidden = {name: [reason] for name, reason in TEMPLATE_FORBIDDEN.items() if name in template}
    allowed = {name: value for name, value in template.items() if name not in TEMPLATE_FORBIDDEN}
    try:
        cleaned = clean_callback(allowed)
    except ApplicationError as exc:
        forbidden = {**exc.fields, **forbidden}
    if forbidden:
        raise ApplicationError("Invalid input.", fields={"task_template": forbidden})
    return cleaned


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("Invalid input.", fields={field: [message]})


# --- when ---------------------------------------------------------------------------------------


def fire_times(cron: str, zone: str, *, after: datetime) -> Iterator[datetime]:
    """The fire times strictly after `after`, as aware UTC datetimes, ascending, without end
    (it stops only for expressions with a last date)."""
    tz = ZoneInfo(zone)
    after = after.astimezone(UTC)
    seconds = len(cron.split()) == 6
    every_hour = _runs_every_hour(cron, seconds)
    start = after.astimezone(tz).replace(tzinfo=None)
    if _offset_changes_near(tz, after):
        start -= _DST_MARGIN
    wall_times = croniter(cron, start, ret_type=datetime, second_at_beginning=seconds)
    pending: list[datetime] = []
    last = after
    while True:
        try:
            wall = wall_times.get_next()
        except CroniterBadDateError:
            wall = None
        if wall is None:
            bound = None
        else:
            for instant in _instants(wall, tz, every_hour):
                heapq.heappush(pending, instant)
            # No later wall time maps to an instant before this one: what lies below is final.
            bound = min(_utc(wall, tz, 0), _utc(wall, tz, 1))
        while pending and (bound is None or pending[0] <= bound):
            instant = heapq.heappop(pending)
            if instant > last:
                last = instant
                yield instant
        if wall is None:
            return


def next_runs(schedule, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The schedule's next `count` fire times after `after` (default now), UTC."""
    times = fire_times(schedule.cron, schedule.timezone, after=after or timezone.now())
    result = []
    for instant in times:
        result.append(instant)
        if len(result) >= count:
            break
    return result


def next_fire_after(schedule, after: datetime) -> datetime | None:
    return next(fire_times(schedule.cron, schedule.timezone, after=after), None)


def _utc(wall: datetime, tz: ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _instants(wall: datetime, tz: ZoneInfo, every_hour: bool) -> list[datetime]:
    first, second = _utc(wall, tz, 0), _utc(wall, tz, 1)
    if first == second:
        return [first]
    if first.astimezone(tz).replace(tzinfo=None) != wall:
        # In the gap of a jump forward: fold 0 reads it with the offset before the jump, i.e. the
        # same distance after the jump.
        return [first]
    # Repeated when clocks go back: first and second pass.
    return [first, second] if every_hour else [first]


def _runs_every_hour(cron: str, seconds: bool) -> bool:
    hours = croniter(cron, second_at_beginning=seconds).expanded[1]
    return hours == ["*"] or len(hours) == 24


def _offset_changes_near(tz: ZoneInfo, moment: datetime) -> bool:
    offsets = {(moment + delta).astimezone(tz).utcoffset() for delta in (-_DST_MARGIN, _DST_MARGIN)}
    return len(offsets | {moment.astimezone(tz).utcoffset()}) > 1


# --- firing plans ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirePlan:
    """What one step does for a due schedule."""

    fire_at: datetime | None  # the fire time of the task to create; None: create nothing
    catch_up: bool  # the task stands for missed fires (fire_once): it is due now
    missed: int  # fires missed (at least 1 when any; a long outage is not counted exactly)
    next_fire_at: datetime | None  # the first fire after now


def plan_fire(schedule, *, now: datetime) -> FirePlan:
    """Fires from next_fire_at up to now: the latest, when within MISFIRE_GRACE, is on time and
    fires; earlier ones (and a latest one older than the grace) were missed. `skip` creates nothing
    for missed fires; `fire_once` creates one task for all of them, the on-time one included."""
    first = schedule.next_fire_at
    recent = [first] if first > now - MISFIRE_GRACE else []
    # Only the fires within the grace are enumerated: a long outage is never walked fire by fire.
    for instant in fire_times(schedule.cron, schedule.timezone, after=max(first, now - MISFIRE_GRACE)):
        if instant > now:
            next_fire_at = instant
            break
        recent.append(instant)
    else:
        next_fire_at = None
    on_time = recent[-1] if recent else None
    missed = _count_missed(first, on_time, recent)
    if missed and schedule.missed_policy == MissedPolicy.FIRE_ONCE:
        return FirePlan(fire_at=on_time or now, catch_up=True, missed=missed, next_fire_at=next_fire_at)
    return FirePlan(fire_at=on_time, catch_up=False, missed=missed, next_fire_at=next_fire_at)


def _count_missed(first: datetime, on_time: datetime | None, recent: list[datetime]) -> int:
    """How many fires are missed; at least 1 when some are, without counting a long outage exactly."""
    if on_time is None:
        return 1
    return len(recent) - 1 if recent[0] == first else len(recent)
