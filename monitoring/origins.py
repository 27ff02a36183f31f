"""Receiver origins (scheme://host:port, as CallbackTask.origin and CircuitBreaker.origin): how an
operator names one, where its page is, and which ones are worth listing.

Imported by the admin's pages to link to an origin's page: `origin_page_url(origin)`.
"""

from django import forms
from django.contrib.admin.utils import quote
from django.core.cache import cache
from django.db.models import Count
from django.urls import reverse

from callbacks.domain.urls import url_origin
from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import CallbackTask, CircuitBreaker

# Origins offered for a filter or listed: those that have a breaker or unfinished work.
MAX_LISTED = 200
LISTED_CACHE_SECONDS = 30


def parse_origin(text: str) -> str:
    """An origin written as an operator would (a callback's URL, or scheme://host[:port]) in the
    engine's form. ValueError with the reason when it is not one."""
    text = (text or "").strip()
    if "://" not in text:
        raise ValueError(
            "Write an origin as scheme://host:port or paste a callback URL, e.g. https://hooks.example.com."
        )
    try:
        return url_origin(text)
    except (ValueError, KeyError):  # a bad port; a scheme other than http(s)
        raise ValueError(f"{text!r} is not an http or https URL with a host and a valid port.") from None


class OriginField(forms.CharField):
    """A text field that accepts an origin or a URL and cleans it to the origin."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return ""
        try:
            return parse_origin(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


def origin_page_url(origin: str) -> str:
    """The admin page of this origin. The origin is quoted as the admin quotes odd primary keys
    (":" and "/" escaped), so no proxy merging slashes or decoding %2F can change it."""
    return reverse("admin-origin", args=[quote(origin)])


def known_origins() -> list[str]:
    """Origins with a breaker row or unfinished tasks, by name, briefly cached."""
    found = cache.get("tc-known-origins")
    if found is None:
        breakers = CircuitBreaker.objects.values_list("origin", flat=True)[:MAX_LISTED]
        busy = (
            CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES)
            .values("origin")
            .annotate(n=Count("id"))
            .order_by("-n")[:MAX_LISTED]
        )
        found = sorted(set(breakers) | {row["origin"] for row in busy})[:MAX_LISTED]
        cache.set("tc-known-origins", found, LISTED_CACHE_SECONDS)
    return found
