"""What every portal page shares: its context, a page of rows without a COUNT, refusals as messages."""

import json

from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse

PER_PAGE = 50


def page(request, template: str, context: dict, *, nav: str, status: int = 200):
    context = {
        "tenant": request.portal_link.tenant,
        "portal_link": request.portal_link,
        "nav": nav,
        **context,
    }
    return TemplateResponse(request, template, context, status=status)


def rows_of_page(queryset, number: int, per_page: int = PER_PAGE) -> tuple[list, bool]:
    """The rows of page `number` (from 1) and whether a next page has any: one more row is read instead
    of counting a table that may hold millions."""
    start = (number - 1) * per_page
    rows = list(queryset[start : start + per_page + 1])
    return rows[:per_page], len(rows) > per_page


def page_links(request, number: int, has_next: bool) -> dict:
    """Query strings of the newer and older pages, keeping the filters."""

    def at(n):
        query = request.GET.copy()
        query["page"] = str(n)
        return "?" + query.urlencode()

    return {
        "number": number,
        "previous": at(number - 1) if number > 1 else None,
        "next": at(number + 1) if has_next else None,
    }


def post_only(request):
    """None for a POST; else the 405 a POST-only URL answers (after its object was found: another
    tenant's id is a 404 whatever the method)."""
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def pretty_json(value) -> str:
    """A JSON value indented for a <pre>; "" for nothing."""
    return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
