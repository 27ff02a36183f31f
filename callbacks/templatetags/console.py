"""The console's small pieces, shared by the admin and the tenant portal: status and outcome badges,
times to the millisecond, and readable durations."""

import json
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from callbacks.domain.vocabulary import OUTCOME_MEANINGS, OUTCOME_TONES, STATUS_MEANINGS, TaskStatus

register = template.Library()

# How much of a body a page shows; the whole body (up to 1 MB) is in the API's executions endpoint.
BODY_SHOWN = 2000


@register.simple_tag
def status_badge(status: str):
    """The status as the API spells it, coloured, its meaning on hover."""
    if not status:
        return "-"
    return format_html(
        '<span class="tc-badge tc-status-{}" title="{}">{}</span>',
        status,
        STATUS_MEANINGS.get(status, ""),
        status,
    )


@register.simple_tag
def outcome_badge(outcome: str, status_code=None):
    if not outcome:
        return "-"
    tone = OUTCOME_TONES.get(outcome, "retry")
    code = f" {status_code}" if status_code else ""
    return format_html(
        '<span class="tc-badge tc-outcome tc-tone-{}" title="{}">{}{}</span>',
        tone,
        OUTCOME_MEANINGS.get(outcome, ""),
        outcome,
        code,
    )


@register.inclusion_tag("console/status_legend.html")
def status_legend():
    return {"statuses": [(status.value, STATUS_MEANINGS[status]) for status in TaskStatus]}


@register.filter
def precise(moment: datetime | None) -> str:
    """A time to the millisecond, in the current zone, with the zone's name."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d} {local.tzname()}"


@register.filter
def span(seconds: float | None) -> str:
    """A duration as an operator reads it: 350 ms, 2.4 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "-"
    seconds = max(float(seconds), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // smaller_size
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{seconds:.0f} s"


def shortened(text: str, limit: int = BODY_SHOWN) -> str:
    """The text's first `limit` characters, saying how many more there are."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def readable_body(task, limit: int = BODY_SHOWN * 5) -> str:
    """A callback's body as a person reads it: JSON indented (the wire bytes are kept as sent), shortened."""
    body = task.payload
    if task.body_format == "json" and body:
        try:
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return shortened(body, limit)
