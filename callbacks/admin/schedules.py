"""Cron schedules (edited through services.schedules; fire now, pause, resume; the callbacks they fired)
and the declared queues (declare, pause, resume)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.fields import InvalidJSONInput
from django.forms.models import construct_instance
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from callbacks.admin.common import BigTableAdmin, ReadOnlyAdmin, actor, adopt, run_each
from callbacks.admin.filters import ScheduleStateFilter, TenantFilter
from callbacks.domain.callback import clean_queue_name
from callbacks.domain.schedule import next_runs
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import CallbackSchedule, QueueState
from callbacks.services.queues import queue_create, queue_pause, queue_resume
from callbacks.services.schedules import (
    schedule_check,
    schedule_create,
    schedule_delete,
    schedule_fire_now,
    schedule_pause,
    schedule_resume,
    schedule_update,
)
from callbacks.templatetags import console

# The callbacks a schedule's page lists; the task list filtered by the schedule has them all.
FIRED_SHOWN = 50
# What the form edits, in the service's names; paused is switched by the Pause and Resume buttons.
FORM_FIELDS = ("name", "cron", "timezone", "missed_policy", "task_template")
TEMPLATE_EXAMPLE = '{"url": "https://hooks.example.com/report", "method": "POST", "body": {"kind": "daily"}}'


def state_badge(schedule) -> str:
    """Active or paused in words, so nobody has to read a boolean icon the right way round."""
    state = "paused" if schedule.paused else "active"
    return format_html('<span class="tc-badge tc-schedule-{}">{}</span>', state, state)


def service_errors_on_fields(form, error: ApplicationError) -> None:
    """A refusal as form errors on the fields it names; the template's inner fields (url, headers...)
    are spelt out on the template's field ("url: only http and https URLs are accepted")."""
    if not error.fields:
        form.add_error(None, error.message)
    for name, problems in error.fields.items():
        target = name if name in form.fields else None
        for problem in _flat(problems):
            form.add_error(target, problem if target else f"{name}: {problem}")


def _flat(problems, prefix: str = "") -> list[str]:
    if isinstance(problems, dict):
        return [text for key, inner in problems.items() for text in _flat(inner, f"{prefix}{key}: ")]
    if isinstance(problems, list | tuple):
        return [text for problem in problems for text in _flat(problem, prefix)]
    return [f"{prefix}{problems}"]


class TemplateField(forms.JSONField):
    """The template indented, one field a line, so it is edited rather than deciphered."""

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ScheduleForm(forms.ModelForm):
    """Checks what services.schedules would check (cron, minimum interval, time zone, template and its
    URL rules, quota, unique name) and shows each refusal on its field; the admin saves through the
    service afterwards."""

    task_template = TemplateField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 90, "class": "tc-json-input"}),
        help_text=format_html(
            "the callback each fire registers, as the API takes it (url, method, headers, body, "
            "queue, priority, ...; not run_at, delay_seconds or idempotency_key), e.g. <code>{}</code>",
            TEMPLATE_EXAMPLE,
        ),
    )

    class Meta:
        model = CallbackSchedule
        fields = ("tenant", *FORM_FIELDS)
        help_texts = {
            "cron": "5 fields (minute hour day month weekday), e.g. <code>*/15 * * * *</code>; "
            "or 6 with seconds first",
            "timezone": "an IANA name, e.g. UTC or Europe/Berlin: the cron is read on its wall clock",
            "missed_policy": "fires missed while no dispatcher ran: skip them, or fire once for all",
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        tenant = cleaned.get("tenant") or self.instance.tenant
        existing = None if self.instance._state.adding else self.instance
        try:
            schedule_check(tenant=tenant, data=self.service_data(), schedule=existing)
        except ApplicationError as exc:
            service_errors_on_fields(self, exc)
        return cleaned

    def _post_clean(self):
        # Only the instance the admin expects; the model's own checks (its unique name constraint) would
        # repeat the service's refusals in other words.
        self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)

    def service_data(self) -> dict:
        names = FORM_FIELDS if self.instance._state.adding else self.changed_data
        return {name: self.cleaned_data[name] for name in names if name in FORM_FIELDS}

    def save_through_service(self, who: str) -> CallbackSchedule:
        if self.instance._state.adding:
            return schedule_create(
                tenant=self.cleaned_data["tenant"],
                data=self.service_data(),
                actor_type=ActorType.USER,
                actor=who,
            )
        return schedule_update(
            schedule=self.instance, data=self.service_data(), actor_type=ActorType.USER, actor=who
        )


@admin.register(CallbackSchedule)
class CallbackScheduleAdmin(BigTableAdmin):
    """Schedules are edited through services.schedules (the API's checks); the page lists the callbacks
    a schedule fired, and fires, pauses and resumes it."""

    form = ScheduleForm
    list_display = (
        "name",
        "tenant",
        "state",
        "cron",
        "timezone",
        "next_fire_at",
        "last_fired_at",
        "fired_link",
    )
    list_filter = (ScheduleStateFilter, TenantFilter)
    list_select_related = ("tenant",)
    search_fields = ("name",)
    ordering = ("tenant__name", "name")
    actions = ("fire_now", "pause", "resume")
    change_form_template = "admin/callbacks/callbackschedule/change_form.html"
    change_list_template = "admin/callbacks/callbackschedule/change_list.html"
    readonly_fields = (
        "id",
        "state",
        "next_five_runs",
        "next_fire_at",
        "last_fired_at",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("tenant", *FORM_FIELDS)}),)
        return (
            (None, {"fields": ("id", "tenant", "state", *FORM_FIELDS)}),
            (
                "Timing",
                {"fields": ("next_five_runs", "next_fire_at", "last_fired_at", "created_at", "updated_at")},
            ),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fields = (*self.readonly_fields, "tenant")
        if not self.has_change_permission(request, obj):
            fields = (*fields, *FORM_FIELDS)
        return fields

    @admin.display(description="state", ordering="paused")
    def state(self, schedule):
        return state_badge(schedule)

    @admin.display(description="callbacks fired")
    def fired_link(self, schedule):
        return format_html('<a href="{}">callbacks</a>', _fired_url(schedule))

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

    # --- writes: each through services.schedules ------------------------------------------------

    def save_model(self, request, obj, form, change):
        adopt(obj, form.save_through_service(actor(request)))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            # The form checked everything; this is what changed in between (another schedule took the
            # name or the last place of the quota). Nothing was saved: the admin's transaction rolled back.
            self.message_user(request, f"Not saved: {_reasons(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request, obj):
        schedule_delete(schedule=obj, actor_type=ActorType.USER, actor=actor(request))

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            self.delete_model(request, schedule)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            fired = obj.tasks.select_related("tenant").order_by("-created_at")[:FIRED_SHOWN]
            context.update(
                fired=[(task, console.status_badge(task.status)) for task in fired],
                fired_shown=FIRED_SHOWN,
                fired_url=_fired_url(obj),
                state=state_badge(obj),
                may_operate=self.has_operate_permission(request),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_operate_permission(self, request):
        return request.user.has_perm("callbacks.change_callbackschedule")

    # --- the buttons on a schedule's page ---------------------------------------------------------

    def get_urls(self):
        def button(name, view):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"callbacks_callbackschedule_{name.replace('-', '_')}",
            )

        return [
            button("fire-now", self.fire_now_view),
            button("pause", self.pause_view),
            button("resume", self.resume_view),
            *super().get_urls(),
        ]

    def fire_now_view(self, request, object_id):
        schedule = self._operated(request, object_id)
        try:
            task = schedule_fire_now(schedule=schedule, actor_type=ActorType.USER, actor=actor(request))
        except ApplicationError as exc:
            self.message_user(request, f"Not fired: {_reasons(exc)}", messages.ERROR)
        else:
            link = reverse("admin:callbacks_callbacktask_change", args=[task.pk])
            self.message_user(
                request,
                format_html('Fired: callback <a href="{}">{}</a> is due now.', link, str(task.pk)[:8]),
                messages.SUCCESS,
            )
        return self._back(schedule)

    def pause_view(self, request, object_id):
        schedule = self._operated(request, object_id)
        schedule_pause(schedule=schedule, actor_type=ActorType.USER, actor=actor(request))
        self.message_user(request, "Paused: no fires until resumed.", messages.SUCCESS)
        return self._back(schedule)

    def resume_view(self, request, object_id):
        schedule = self._operated(request, object_id)
        schedule_resume(schedule=schedule, actor_type=ActorType.USER, actor=actor(request))
        self.message_user(request, "Resumed: fires again from now on.", messages.SUCCESS)
        return self._back(schedule)

    def _operated(self, request, object_id) -> CallbackSchedule:
        if request.method != "POST":
            raise PermissionDenied  # a link followed or prefetched must not fire anything
        if not self.has_operate_permission(request):
            raise PermissionDenied
        return get_object_or_404(CallbackSchedule.objects.select_related("tenant"), pk=object_id)

    def _back(self, schedule) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:callbacks_callbackschedule_change", args=[schedule.pk]))

    # --- list actions -------------------------------------------------------------------------------

    @admin.action(description="Fire now (one callback each)", permissions=["operate"])
    def fire_now(self, request, queryset):
        run_each(
            self,
            request,
            queryset.select_related("tenant"),
            "Fired",
            lambda schedule: schedule_fire_now(
                schedule=schedule, actor_type=ActorType.USER, actor=actor(request)
            ),
        )

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


def _fired_url(schedule) -> str:
    return reverse("admin:callbacks_callbacktask_changelist") + f"?schedule={schedule.pk}"


def _reasons(error: ApplicationError) -> str:
    texts = [f"{name}: {text}" for name, problems in error.fields.items() for text in _flat(problems)]
    return "; ".join(texts) or error.message


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
