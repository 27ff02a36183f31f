"""Pieces every admin module shares: cheap pagination, the acting user, result messages, JSON display."""

import json

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from callbacks.errors import ApplicationError

# An action walks at most this many selected rows; "select all" over millions would time out the request.
ACTION_LIMIT = 1000
# Errors listed one by one in an action's message; the rest are counted.
ERRORS_SHOWN = 10


class CappedPaginator(Paginator):
    """Counts at most CAP rows (a COUNT over a LIMITed subquery), so paging through a table of ten
    million rows costs what paging through ten thousand does. Past the cap the last pages are
    simply not linked; filters narrow the list instead."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()


class BigTableAdmin(admin.ModelAdmin):
    """A list over a table that grows without bound: no full COUNT(*), ever."""

    paginator = CappedPaginator
    show_full_result_count = False
    list_per_page = 50


class ReadOnlyAdmin(BigTableAdmin):
    """History: rows are written by the engine and never changed by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def actor(request) -> str:
    return request.user.get_username()


def pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return "-"
    return format_html('<pre class="tc-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def run_each(model_admin, request, objects, verb: str, call) -> None:
    """Call `call(obj)` for each object; one message with the count done and each refusal (a 409 and the like)."""
    done, errors = 0, []
    for obj in objects:
        try:
            call(obj)
            done += 1
        except ApplicationError as exc:
            errors.append(f"{obj.pk}: {exc.message}")
    report(model_admin, request, verb, done, errors)


def report(model_admin, request, verb: str, done: int, errors: list[str]) -> None:
    if done or not errors:
        model_admin.message_user(request, f"{verb}: {done}.", messages.SUCCESS)
    if errors:
        listed = "; ".join(errors[:ERRORS_SHOWN])
        more = f" (and {len(errors) - ERRORS_SHOWN} more)" if len(errors) > ERRORS_SHOWN else ""
        model_admin.message_user(request, f"Refused {len(errors)}: {listed}{more}", messages.ERROR)


def adopt(obj, saved) -> None:
    """Make the admin's unsaved instance the row a service saved, so the admin's log and redirect use it."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def add_service_errors(form, error: ApplicationError) -> None:
    """A refusal of the domain's checks (or a service's) as form errors, on the field it names when the
    form has that field."""
    if not error.fields:
        form.add_error(None, error.message)
    for name, problems in error.fields.items():
        target = name if name in form.fields else None
        for problem in problems if isinstance(problems, list | tuple) else [problems]:
            form.add_error(target, problem if target else f"{name}: {problem}")
