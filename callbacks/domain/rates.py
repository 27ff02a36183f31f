"""Rates: "N/s", "N/min", "N/h" or "N/day", and "0", "off" or "none" for no limit.

One grammar for the installation's API_RATE_LIMIT (checked at start-up) and a tenant's api_rate_limit
(checked when set), read by the API throttle.
"""

import re
from dataclasses import dataclass

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$", re.IGNORECASE)
OFF = ("0", "off", "none")


class RateError(ValueError):
    pass


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int


def parse_rate(text: str) -> Rate | None:
    """ "N/s", "N/min", "N/h" or "N/day" -> Rate; "0", "off", "none" -> None (no limit). Raises RateError."""
    if not isinstance(text, str):
        raise RateError('must be text like "100/s", "3000/min" or "off"')
    if text.strip().lower() in OFF:
        return None
    match = _RATE.match(text)
    if match is None or match.group(2).lower() not in _PERIODS:
        raise RateError(f'{text!r} is not a rate like "100/s", "3000/min", "50000/h", or "off"')
    requests = int(match.group(1))
    if requests == 0:
        return None
    return Rate(requests=requests, seconds=_PERIODS[match.group(2).lower()])
