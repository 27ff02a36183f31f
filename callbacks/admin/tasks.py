"""Callback tasks and their attempts: find what happened to a callback, retry it, cancel it, replay dead letters,
send a test one."""

import functools

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from callbacks.admin.common import (
    ACTION_LIMIT,
    ReadOnlyAdmin,
    ReadOnlyInline,
    actor,
    pretty_json,
    run_each,
)
from callbacks.admin.filters import (
    CreatedFilter,
    OriginFilter,
    OutcomeFilter,
    QueueFilter,
    ScheduleFilter,
    StartedFilter,
    StatusFilter,
    TenantFilter,
)
from callbacks.admin.send_test import send_test_view
from callbacks.admin.task_actions import TaskActionViews
from callbacks.domain import moments
from callbacks.domain.vocabulary import ActorType
from callbacks.masking import mask_headers, mask_text
from callbacks.models import CallbackTask, TaskEvent, TaskExecution, TaskStatus, Tenant
from callbacks.selectors import task_search, task_timeline
from callbacks.services.tasks import dead_letters, task_cancel, task_replay_dead, task_retry
from callbacks.templatetags import console
from monitoring.origins import origin_page_url


def _pre(text: str):
    return format_html('<pre class="tc-pre">{}</pre>', text) if text else "-"


class ExecutionInline(ReadOnlyInline):
    model = TaskExecution
    verbose_name_plural = "attempts"
    ordering = ("attempt", "started_at")
    fields = readonly_fields = (
        "attempt",
        "started",
        "duration",
        "outcome_value",
        "http_version",
        "error",
        "request_headers_masked",
        "response_headers_masked",
        "response_body_shown",
    )

    # Attempts are milliseconds apart when a receiver answers fast: their times show the milliseconds.
    @admin.display(description="started", ordering="started_at")
    def started(self, execution):
        return console.precise(execution.started_at)

    @admin.display(description="took")
    def duration(self, execution):
        return "-" if execution.duration_ms is None else f"{execution.duration_ms:.1f} ms"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_value(self, execution):
        return console.outcome_badge(execution.outcome, execution.status_code)

    @admin.display(description="request headers")
    def request_headers_masked(self, execution):
        return pretty_json(mask_headers(execution.request_headers))

    @admin.display(description="response headers")
    def response_headers_masked(self, execution):
        return pretty_json(mask_headers(execution.response_headers))

    @admin.display(description="response body")
    def response_body_shown(self, execution):
        body = console.shortened(mask_text(execution.response_body))
        if execution.response_truncated:
            body += "\n[truncated when stored]"
        return _pre(body)


class EventInline(ReadOnlyInline):
    model = TaskEvent
    verbose_name_plural = "status history"
    ordering = ("at", "id")
    fields = readonly_fields = ("when", "from_status_value", "to_status_value", "note")

    @admin.display(description="at")
    def when(self, event):
        return console.precise(event.at)

    @admin.display(description="from")
    def from_status_value(self, event):
        return console.status_badge(event.from_status)

    @admin.display(description="to")
    def to_status_value(self, event):
        return console.status_badge(event.to_status)


@admin.register(CallbackTask)
class CallbackTaskAdmin(TaskActionViews, ReadOnlyAdmin):
    """Tasks change only through actions (services); the detail page is read-only, with the buttons of
    the actions that apply to the task."""

    # What fits 1440 px beside the filters: the outcome's badge carries the last status code, and the
    # priority is on the task's page.
    list_display = (
        "short_id",
        "status_value",
        "tenant",
        "method_value",
        "origin_link",
        "queue",
        "attempts",
        "outcome_value",
        "next_attempt_at",
        "created_at",
    )
    list_filter = (StatusFilter, QueueFilter, TenantFilter, OriginFilter, CreatedFilter, ScheduleFilter)
    list_select_related = ("tenant",)
    search_fields = ("business_id",)  # the search box; get_search_results does the matching
    search_help_text = (
        "A task id or its first characters (four or more); a whole business_id or trace_id; from three "
        "characters on, part of the host or of the path and query, or a whole URL (any case)."
    )
    ordering = ("-created_at",)
    actions = ("retry_now", "cancel", "replay_dead")
    inlines = (ExecutionInline, EventInline)
    change_list_template = "admin/callbacks/callbacktask/change_list.html"
    change_form_template = "admin/callbacks/callbacktask/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "tenant",
                    "status_value",
                    "method_value",
                    "url",
                    "origin",
                    "queue",
                    "priority",
                )
            },
        ),
        ("Timeline", {"fields": ("timeline",)}),
        ("Request", {"fields": ("headers_masked", "body_format_value", "body_shown")}),
        (
            "Progress",
            {
                "fields": (
                    "attempts",
                    "last_outcome_value",
                    "last_error",
                    "run_at",
                    "next_attempt_at",
                    "due_at",
                    "locked_until",
                    "locked_by",
                    "created_at",
                    "updated_at",
                    "finished_at",
                )
            },
        ),
        (
            "Context",
            {
                "fields": (
                    "business_id",
                    "trace_id",
                    "traceparent",
                    "idempotency_key",
                    "ordering_key",
                    "schedule",
                )
            },
        ),
        (
            "Policy",
            {
                "classes": ("collapse",),
                "fields": (
                    "max_retries",
                    "backoff_initial_seconds",
                    "backoff_multiplier",
                    "backoff_max_seconds",
                    "connect_timeout_seconds",
                    "total_timeout_seconds",
                    "success_statuses",
                ),
            },
        ),
    )
    readonly_fields = (
        "status_value",
        "method_value",
        "body_format_value",
        "last_outcome_value",
        "timeline",
        "headers_masked",
        "body_shown",
    )

    @admin.display(description="id", ordering="id")
    def short_id(self, task):
        return str(task.id)[:8]

    # The API's values ("http_5xx"), not the choices' labels ("Http 5Xx"): what operators search logs for.
    @admin.display(description="status", ordering="status")
    def status_value(self, task):
        return console.status_badge(task.status)

    @admin.display(description="origin", ordering="origin")
    def origin_link(self, task):
        return format_html('<a href="{}">{}</a>', origin_page_url(task.origin), task.origin)

    @admin.display(description="method", ordering="method")
    def method_value(self, task):
        return task.method

    @admin.display(description="body format")
    def body_format_value(self, task):
        return task.body_format

    @admin.display(description="last outcome", ordering="last_outcome")
    def outcome_value(self, task):
        return console.outcome_badge(task.last_outcome, task.last_status_code)

    last_outcome_value = outcome_value

    @admin.display(description="attempts over time")
    def timeline(self, task):
        return render_to_string("console/timeline.html", {"timeline": task_timeline(task=task)})

    @admin.display(description="headers")
    def headers_masked(self, task):
        return pretty_json(mask_headers(task.headers))

    @admin.display(description="body")
    def body_shown(self, task):
        return _pre(console.readable_body(task))

    def get_search_results(self, request, queryset, search_term):
        return task_search(queryset, search_term), False

    # --- pages: the list, a task's page with its buttons, the add page ------------------------------

    def changelist_view(self, request, extra_context=None):
        # The list needs the width: without the app menu beside it (the breadcrumbs lead back) its
        # columns fit 1440 px next to the filters.
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["task_actions"] = self.task_actions(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def add_view(self, request, form_url="", extra_context=None):
        # A task is made by sending one: the test page, through the service every callback goes through.
        return HttpResponseRedirect(reverse("admin:callbacks_callbacktask_send_test"))

    # --- actions: each calls a service, one message with counts and refusals -------------------------

    @admin.action(description="Retry now", permissions=["operate"])
    def retry_now(self, request, queryset):
        run_each(
            self,
            request,
            queryset[:ACTION_LIMIT],
            "Retried",
            lambda task: task_retry(task=task, actor_type=ActorType.USER, actor=actor(request)),
        )

    @admin.action(description="Cancel", permissions=["operate"])
    def cancel(self, request, queryset):
        run_each(
            self,
            request,
            queryset[:ACTION_LIMIT],
            "Cancelled",
            lambda task: task_cancel(task=task, actor_type=ActorType.USER, actor=actor(request)),
        )

    @admin.action(description="Replay dead letters…", permissions=["operate"])
    def replay_dead(self, request, queryset):
        """A confirmation page first (Django's delete_selected habit); the replay on "yes"."""
        dead = queryset.filter(status=TaskStatus.DEAD)
        if request.POST.get("confirm") == "yes":
            ids = list(dead.values_list("pk", flat=True)[:ACTION_LIMIT])
            count = task_replay_dead(task_ids=ids, actor_type=ActorType.USER, actor=actor(request))
            self.message_user(request, f"Replayed {count} dead letter(s).", messages.SUCCESS)
            return None
        selected = queryset.count()
        shown = list(dead.select_related("tenant")[:ACTION_LIMIT])
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay dead letters?",
            "opts": self.model._meta,
            "tasks": shown,
            "selected": selected,
            "skipped": selected - len(shown),
            "select_across": request.POST.get("select_across", "0"),
            "selected_ids": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/callbacks/callbacktask/replay_dead_confirmation.html", context
        )

    # --- the bulk replay page: every dead letter of a tenant since a time, not only one page's --------

    def get_urls(self):
        view = self.admin_site.admin_view(self.replay_dead_view)
        send_test = self.admin_site.admin_view(functools.partial(send_test_view, self))
        return [
            path("replay-dead/", view, name="callbacks_callbacktask_replay_dead"),
            path("send-test/", send_test, name="callbacks_callbacktask_send_test"),
            *self.task_action_urls(),
            *super().get_urls(),
        ]

    def replay_dead_view(self, request):
        if not self.has_operate_permission(request):
            raise PermissionDenied
        form = ReplayForm(request.POST or request.GET or None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay dead letters",
            "opts": self.model._meta,
            "form": form,
        }
        if form.is_valid():
            tenant, since = form.cleaned_data["tenant"], form.cleaned_data["since"]
            if request.method == "POST" and request.POST.get("confirm") == "yes":
                count = task_replay_dead(
                    tenant=tenant, since=since, actor_type=ActorType.USER, actor=actor(request)
                )
                self.message_user(request, f"Replayed {count} dead letter(s).", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:callbacks_callbacktask_changelist") + "?status=scheduled"
                )
            dead = dead_letters(tenant=tenant, since=since)
            count = dead.count()
            listed = list(dead.select_related("tenant").order_by("-finished_at", "-id")[:REPLAY_LISTED])
            context.update(
                count=count,
                tasks=listed,
                more=count - len(listed),
                # An age ("6h") is fixed when listed, so the replay covers the window the operator saw.
                since_value=since.isoformat() if since else "",
            )
        return TemplateResponse(request, "admin/callbacks/callbacktask/replay_dead.html", context)


# Dead letters listed on the replay page before the operator confirms; the count covers them all.
REPLAY_LISTED = 50


class ReplayForm(forms.Form):
    tenant = forms.ModelChoiceField(
        Tenant.objects.order_by("name"), required=False, empty_label="every tenant"
    )
    since = forms.CharField(
        required=False,
        help_text="only tasks that died at or after this: an age like 30m, 6h or 2d, or a time "
        "(YYYY-MM-DD HH:MM, UTC unless it has an offset)",
        widget=forms.TextInput(attrs={"placeholder": "6h", "size": 24}),
    )

    def clean_since(self):
        text = self.cleaned_data["since"].strip()
        if not text:
            return None
        try:
            since = moments.parse_since(text, naive_as_utc=True)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if since > timezone.now():
            raise forms.ValidationError("This is in the future: no task has died then yet.")
        return since


@admin.register(TaskExecution)
class TaskExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task_link",
        "tenant",
        "attempt",
        "started",
        "duration",
        "outcome_value",
        "http_version",
        "error_short",
    )
    list_filter = (OutcomeFilter, StartedFilter, TenantFilter)
    list_select_related = ("tenant",)
    ordering = ("-started_at",)
    fields = (
        "task_link",
        "tenant",
        "attempt",
        "started",
        "duration",
        "outcome_value",
        "status_code",
        "http_version",
        "error",
        "worker",
        "request_method",
        "request_url",
        "request_headers_masked",
        "response_headers_masked",
        "response_body_shown",
        "response_truncated",
    )
    readonly_fields = (
        "task_link",
        "started",
        "duration",
        "outcome_value",
        "request_headers_masked",
        "response_headers_masked",
        "response_body_shown",
    )

    started = ExecutionInline.started
    duration = ExecutionInline.duration
    outcome_value = ExecutionInline.outcome_value
    request_headers_masked = ExecutionInline.request_headers_masked
    response_headers_masked = ExecutionInline.response_headers_masked
    response_body_shown = ExecutionInline.response_body_shown

    @admin.display(description="task")
    def task_link(self, execution):
        url = reverse("admin:callbacks_callbacktask_change", args=[execution.task_id])
        return format_html('<a href="{}">{}</a>', url, str(execution.task_id)[:8])

    @admin.display(description="error")
    def error_short(self, execution):
        return console.shortened(execution.error, 80)
