"""List filters as SimpleListFilter classes. Choices that come from a big table are cached briefly:
a DISTINCT over millions of tasks is worth doing once a minute, not on every page view."""

import uuid
from datetime import timedelta

from django.contrib import admin
from django.core.cache import cache
from django.utils import timezone

from callbacks.domain.vocabulary import ActorType
from callbacks.models import AuditLog, CallbackSchedule, CallbackTask, Outcome, TaskStatus, Tenant

CHOICES_CACHE_SECONDS = 60
MAX_CHOICES = 50


def _cached_distinct(model, field: str) -> list[str]:
    key = f"admin-choices:{model._meta.label_lower}:{field}"
    values = cache.get(key)
    if values is None:
        rows = model.objects.order_by(field).values_list(field, flat=True).distinct()[:MAX_CHOICES]
        values = [value for value in rows if value]
        cache.set(key, values, CHOICES_CACHE_SECONDS)
    return values


class ExactFilter(admin.SimpleListFilter):
    """Filter on one field by exact value; any value typed into the URL works, not only the listed ones."""

    field = ""

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


def _values(choices) -> list[tuple[str, str]]:
    # Offered as the API spells them ("http_5xx"), not as the choices' labels ("Http 5Xx").
    return [(value, value) for value in choices.values]


class StatusFilter(ExactFilter):
    title = "status"
    parameter_name = field = "status"

    def lookups(self, request, model_admin):
        return _values(TaskStatus)


class OutcomeFilter(ExactFilter):
    title = "outcome"
    parameter_name = field = "outcome"

    def lookups(self, request, model_admin):
        return _values(Outcome)


class QueueFilter(ExactFilter):
    title = "queue"
    parameter_name = field = "queue"

    def lookups(self, request, model_admin):
        return [(name, name) for name in _cached_distinct(CallbackTask, "queue")]


class OriginFilter(ExactFilter):
    title = "target host"
    parameter_name = field = "origin"

    def lookups(self, request, model_admin):
        return [(origin, origin) for origin in _cached_distinct(CallbackTask, "origin")]


class TenantFilter(ExactFilter):
    title = "tenant"
    parameter_name = "tenant"
    field = "tenant_id"

    def lookups(self, request, model_admin):
        return [
            (str(pk), name) for pk, name in Tenant.objects.order_by("name").values_list("pk", "name")[:200]
        ]


class ScheduleFilter(ExactFilter):
    """The callbacks one schedule fired (linked from the schedule's page): any schedule's id works in
    the URL; the choices list the first schedules by tenant and name, and the chosen one."""

    title = "schedule"
    parameter_name = "schedule"
    field = "schedule_id"

    def lookups(self, request, model_admin):
        schedules = CallbackSchedule.objects.select_related("tenant").order_by("tenant__name", "name")
        choices = [(str(s.pk), f"{s.tenant.name}: {s.name}") for s in schedules[:MAX_CHOICES]]
        chosen = self.value()
        if chosen and chosen not in {pk for pk, _ in choices}:
            picked = schedules.filter(pk=chosen).first() if _is_uuid(chosen) else None
            choices.append((chosen, f"{picked.tenant.name}: {picked.name}" if picked else chosen))
        return choices

    def queryset(self, request, queryset):
        if self.value() and not _is_uuid(self.value()):
            return queryset.none()  # no schedule has such an id
        return super().queryset(request, queryset)


class ScheduleStateFilter(admin.SimpleListFilter):
    """Active or paused in words, rather than "paused: yes/no"."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("paused", "paused")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "paused"):
            return queryset.filter(paused=self.value() == "paused")
        return queryset


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class CreatedFilter(admin.SimpleListFilter):
    title = "created"
    parameter_name = "created"
    field = "created_at"
    SPANS = {
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last day", timedelta(days=1)),
        "7d": ("Last week", timedelta(days=7)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.SPANS.items()]

    def queryset(self, request, queryset):
        span = self.SPANS.get(self.value() or "")
        if span is None:
            return queryset
        return queryset.filter(**{f"{self.field}__gte": timezone.now() - span[1]})


class StartedFilter(CreatedFilter):
    title = "started"
    parameter_name = "started"
    field = "started_at"


class AuditActionFilter(ExactFilter):
    title = "action"
    parameter_name = field = "action"

    def lookups(self, request, model_admin):
        return [(name, name) for name in _cached_distinct(AuditLog, "action")]


class ActorTypeFilter(ExactFilter):
    title = "actor type"
    parameter_name = field = "actor_type"

    def lookups(self, request, model_admin):
        return ActorType.choices
