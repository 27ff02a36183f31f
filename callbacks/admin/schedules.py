"""Cron schedules (next five runs shown; pause and resume) and the declared queues (declare, pause,
resume)."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from callbacks.admin.common import ReadOnlyAdmin, actor, adopt, pretty_json, run_each
from callbacks.admin.filters import TenantFilter
from callbacks.domain.callback import clean_queue_name
from callbacks.domain.schedule import next_runs
from callbacks.domain.vocabulary import ActorType
from callbacks.models import CallbackSchedule, QueueState
from callbacks.services.queues import queue_create, queue_pause, queue_resume
from callbacks.services.schedules import schedule_pause, schedule_resume


@admin.register(CallbackSchedule)
class CallbackScheduleAdmin(ReadOnlyAdmin):
    """Schedules are written through the API (its checks live in services.schedules); here they are
    looked at, paused and resumed."""

    list_display = ("name", "tenant", "cron", "timezone", "paused", "next_fire_at", "last_fired_at")
    list_filter = ("paused", TenantFilter)
    list_select_related = ("tenant",)
    search_fields = ("name",)
    ordering = ("tenant__name", "name")
    actions = ("pause", "resume")
    fields = (
        "id",
        "tenant",
        "name",
        "cron",
        "timezone",
        "next_five_runs",
        "missed_policy",
        "paused",
        "next_fire_at",
        "last_fired_at",
        "template_shown",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("next_five_runs", "template_shown")

    @admin.display(description="next five runs (UTC)")
    def next_five_runs(self, schedule):
        if schedule.paused:
            return "paused"
        try:
            runs = next_runs(schedule, count=5)
        except Exception as exc:  # a stored expression the cron library no longer accepts
            return f"cannot compute: {exc}"
        if not runs:
            return "none"
        return format_html(
            '<ol class="tc-runs">{}</ol>',
            format_html_join("", "<li>{}</li>", ((f"{run:%Y-%m-%d %H:%M:%S}",) for run in runs)),
        )

    @admin.display(description="task template")
    def template_shown(self, schedule):
        return pretty_json(schedule.task_template)

    def has_operate_permission(self, request):
        return request.user.has_perm("callbacks.change_callbackschedule")

    @admin.action(description="Pause", permissions=["operate"])
    def pause(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Paused",
            lambda schedule: schedule_pause(
                schedule=schedule, actor_type=ActorType.USER, actor=actor(request)
            ),
        )

    @admin.action(description="Resume", permissions=["operate"])
    def resume(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Resumed",
            lambda schedule: schedule_resume(
                schedule=schedule, actor_type=ActorType.USER, actor=actor(request)
            ),
        )


class QueueDeclareForm(forms.ModelForm):
    """Declaring a queue: its name only, checked and written by services.queues."""

    class Meta:
        model = QueueState
        fields = ("name",)

    def clean_name(self):
        name = self.cleaned_data["name"]
        try:
            clean_queue_name(name)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return name


@admin.register(QueueState)
class QueueStateAdmin(ReadOnlyAdmin):
    """The declared queues (`default` always): callbacks may name only these. Adding one declares
    it (services.queues.queue_create); start a cluster serving it."""

    list_display = ("name", "paused", "updated_at")
    list_filter = ("paused",)
    ordering = ("name",)
    actions = ("pause", "resume")
    form = QueueDeclareForm

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("callbacks.add_queuestate")

    def save_model(self, request, obj, form, change):
        state, _created = queue_create(name=obj.name, actor_type=ActorType.USER, actor=actor(request))
        adopt(obj, state)

    def has_operate_permission(self, request):
        return request.user.has_perm("callbacks.change_queuestate")

    @admin.action(description="Pause", permissions=["operate"])
    def pause(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Paused",
            lambda queue: queue_pause(name=queue.name, actor_type=ActorType.USER, actor=actor(request)),
        )

    @admin.action(description="Resume", permissions=["operate"])
    def resume(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Resumed",
            lambda queue: queue_resume(name=queue.name, actor_type=ActorType.USER, actor=actor(request)),
        )
