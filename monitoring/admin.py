"""Monitoring tables in the admin, all read-only: they are written by workers, dispatchers and the purge."""

from django.contrib import admin
from django.utils import timezone

from callbacks import conf
from callbacks.admin.common import ReadOnlyAdmin, pretty_json
from callbacks.models import AttemptRollup, Heartbeat
from monitoring.models import MaintenanceRun


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("role", "name", "alive", "seen_at", "started_at")
    list_filter = ("role",)
    ordering = ("role", "name")
    fields = ("role", "name", "seen_at", "started_at", "info_shown")
    readonly_fields = ("info_shown",)

    @admin.display(boolean=True, description="alive")
    def alive(self, beat):
        age = (timezone.now() - beat.seen_at).total_seconds()
        return age <= conf.get("READY_HEARTBEAT_SECONDS")

    @admin.display(description="info")
    def info_shown(self, beat):
        return pretty_json(beat.info)


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "started_at", "finished_at")
    fields = ("name", "started_at", "finished_at", "summary_shown")
    readonly_fields = ("summary_shown",)

    @admin.display(description="summary")
    def summary_shown(self, run):
        return pretty_json(run.summary)


@admin.register(AttemptRollup)
class AttemptRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "period_start",
        "period_minutes",
        "tenant",
        "queue",
        "host",
        "outcome",
        "status_class",
        "count",
        "max_ms",
    )
    list_filter = ("period_minutes", "outcome", "status_class")
    list_select_related = ("tenant",)
    ordering = ("-period_start",)
