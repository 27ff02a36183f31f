"""A moment as operators type it: an ISO 8601 time, or an age counted back from now (30m, 6h, 2d).
`manage.py replay_dead --since` and the admin's replay page read it the same way."""

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

_AGO = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
HINT = "an ISO 8601 time (2030-01-01T09:00:00+00:00) or an age like 30m, 6h or 2d"


def parse_since(text: str, *, now: datetime | None = None, naive_as_utc: bool = False) -> datetime:
    """The moment `text` names; ValueError saying what to write otherwise. A time without an offset is
    refused unless `naive_as_utc` (a form that says its times are UTC)."""
    text = text.strip()
    match = _AGO.match(text)
    if match:
        return (now or timezone.now()) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"give {HINT}")
    if timezone.is_naive(moment):
        if not naive_as_utc:
            raise ValueError(f"include a UTC offset, e.g. {text}+00:00")
        moment = moment.replace(tzinfo=UTC)
    return moment
