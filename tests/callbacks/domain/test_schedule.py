"""When schedules fire: cron expressions on a time zone's wall clock, across daylight-saving changes."""

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callbacks.domain import schedule as scheduling
from callbacks.errors import ApplicationError
from callbacks.models import CallbackSchedule


def fires(cron, zone, after, count):
    return list(itertools.islice(scheduling.fire_times(cron, zone, after=after), count))


def local(instants, zone):
    tz = ZoneInfo(zone)
    return [instant.astimezone(tz).strftime("%m-%d %H:%M:%S%z") for instant in instants]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_daily_fire_keeps_its_wall_time_across_the_berlin_spring_change():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    times = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 4)

    assert local(times, "Europe/Berlin") == [
        "03-28 02:30:00+0100",
        "03-29 03:30:00+0200",  # the missing 02:30, once, the same distance after the jump
        "03-30 02:30:00+0200",
        "03-31 02:30:00+0200",
    ]
    assert times[1] == utc(2026, 3, 29, 1, 30)


def test_daily_fire_in_the_repeated_hour_fires_once_in_october():
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    times = fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 23, 12), 4)

    assert local(times, "Europe/Berlin") == [
        "10-24 02:30:00+0200",
        "10-25 02:30:00+0200",  # the first 02:30 only
        "10-26 02:30:00+0100",
        "10-27 02:30:00+0100",
    ]


def test_a_schedule_running_every_hour_keeps_its_interval_through_both_changes():
    autumn = fires("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 0), 7)
    spring = fires("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 50), 5)

    # Every 30 minutes of real time, the repeated hour included; nothing doubled in spring.
    assert [b - a for a, b in itertools.pairwise(autumn)] == [autumn[1] - autumn[0]] * 6
    assert (autumn[1] - autumn[0]).total_seconds() == 1800
    assert local(autumn, "Europe/Berlin")[1:5] == [
        "10-25 02:00:00+0200",
        "10-25 02:30:00+0200",
        "10-25 02:00:00+0100",
        "10-25 02:30:00+0100",
    ]
    assert local(spring, "Europe/Berlin") == [
        "03-29 01:00:00+0100",
        "03-29 01:30:00+0100",
        "03-29 03:00:00+0200",
        "03-29 03:30:00+0200",
        "03-29 04:00:00+0200",
    ]
    assert [b - a for a, b in itertools.pairwise(spring)] == [spring[1] - spring[0]] * 4


def test_new_york_nine_oclock_moves_in_utc_when_the_clocks_change():
    times = fires("0 9 * * *", "America/New_York", utc(2026, 3, 6, 12), 4)

    assert [t.hour for t in times] == [14, 14, 13, 13]  # EST then EDT (2026-03-08)
    assert local(times, "America/New_York") == [
        "03-06 09:00:00-0500",
        "03-07 09:00:00-0500",
        "03-08 09:00:00-0400",
        "03-09 09:00:00-0400",
    ]
    autumn = fires("0 9 * * *", "America/New_York", utc(2026, 10, 31, 14), 3)
    assert local(autumn, "America/New_York") == [
        "11-01 09:00:00-0500",
        "11-02 09:00:00-0500",
        "11-03 09:00:00-0500",
    ]


def test_a_moment_just_after_the_jump_still_finds_the_shifted_fire():
    # 01:10 UTC is 03:10 CEST; the 02:30 of that day fires at 03:30 CEST, still ahead.
    times = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 1, 10), 2)

    assert times == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_fire_times_are_strictly_after_the_given_moment():
    assert fires("0 * * * *", "UTC", utc(2026, 1, 1, 10), 2) == [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)]


def test_six_fields_put_seconds_first():
    times = fires("*/2 * * * * *", "UTC", utc(2026, 1, 1, 10, 0, 0), 3)

    assert times == [utc(2026, 1, 1, 10, 0, 2), utc(2026, 1, 1, 10, 0, 4), utc(2026, 1, 1, 10, 0, 6)]
    assert fires("15 30 9 * * *", "UTC", utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 9, 30, 15)]


def test_next_runs_lists_the_schedule_s_next_fires():
    schedule = CallbackSchedule(cron="0 12 * * 1", timezone="Asia/Shanghai")

    runs = scheduling.next_runs(schedule, count=3, after=utc(2026, 1, 1))

    assert runs == [utc(2026, 1, 5, 4), utc(2026, 1, 12, 4), utc(2026, 1, 19, 4)]


@pytest.mark.parametrize(
    "cron",
    ["", "   ", "* * * *", "* * * * * * * *", "61 * * * *", "* 25 * * *", "not a cron", "0 0 30 2 *", 5],
)
def test_invalid_cron_names_the_field(cron):
    with pytest.raises(ApplicationError) as caught:
        scheduling.validate_cron(cron)

    assert list(caught.value.fields) == ["cron"]


def test_valid_cron_is_normalised():
    assert scheduling.validate_cron("  */5   *  * * 1-5 ") == "*/5 * * * 1-5"
    assert scheduling.validate_cron("*/2 * * * * *") == "*/2 * * * * *"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "CET+1", "../etc/passwd", "/usr/share/zoneinfo/UTC", None]
)
def test_invalid_timezone_names_the_field(zone):
    with pytest.raises(ApplicationError) as caught:
        scheduling.validate_timezone(zone)

    assert list(caught.value.fields) == ["timezone"]


def test_iana_zones_are_accepted():
    for zone in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"):
        assert scheduling.validate_timezone(zone) == zone
