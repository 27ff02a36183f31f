"""Callback tasks and their attempts: find what happened to a callback, retry it, cancel it, replay dead letters."""

import json

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
    StartedFilter,
    StatusFilter,
    TenantFilter,
)
from callbacks.domain.vocabulary import ActorType
from callbacks.masking import mask_headers, mask_text
from callbacks.models import CallbackTask, TaskEvent, TaskExecution, TaskStatus, Tenant
from callbacks.selectors import task_search, task_timeline
from callbacks.services.tasks import dead_letters, task_cancel, task_replay_dead, task_retry
from callbacks.templatetags import console

# Shown on the page; the full body (up to 1 MB) is in the API's executions endpoint.
BODY_SHOWN = 2000


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _pre(text: str):
    return format_html('<pre class="tc-pre">{}</pre>', text) if text else "-"


class ExecutionInline(ReadOnlyInline):
    model = TaskExecution
    verbose_name_plural = "attempts"
    ordering = ("attempt", "started_at")
    fields = readonly_fields = (
        "attempt",
        "started_at",
        "duration",
        "outcome",
        "status_code",
        "http_version",
        "error",
        "request_headers_masked",
        "response_headers_masked",
        "response_body_shown",
    )

    @admin.display(description="ms")
    def duration(self, execution):
        return "-" if execution.duration_ms is None else f"{execution.duration_ms:.1f}"

    @admin.display(description="request headers")
    def request_headers_masked(self, execution):
        return pretty_json(mask_headers(execution.request_headers))

    @admin.display(description="response headers")
    def response_headers_masked(self, execution):
        return pretty_json(mask_headers(execution.response_headers))

    @admin.display(description="response body")
    def response_body_shown(self, execution):
        body = _short(mask_text(execution.response_body), BODY_SHOWN)
        if execution.response_truncated:
            body += "\n[truncated when stored]"
        return _pre(body)


class EventInline(ReadOnlyInline):
    model = TaskEvent
    verbose_name_plural = "status history"
    ordering = ("at", "id")
    fields = readonly_fields = ("at", "from_status", "to_status", "note")


@admin.register(CallbackTask)
class CallbackTaskAdmin(ReadOnlyAdmin):
    """Tasks change only through actions (services); the detail page is read-only."""

    list_display = (
        "short_id",
        "status_value",
        "tenant",
        "method",
        "origin",
        "queue",
        "priority",
        "attempts",
        "outcome_value",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = (StatusFilter, QueueFilter, TenantFilter, OriginFilter, CreatedFilter)
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
    fieldsets = (
        (None, {"fields": ("id", "tenant", "status_value", "method", "url", "origin", "queue", "priority")}),
        ("Timeline", {"fields": ("timeline",)}),
        ("Request", {"fields": ("headers_masked", "body_format", "body_shown")}),
        (
            "Progress",
            {
                "fields": (
                    "attempts",
                    "last_outcome",
                    "last_status_code",
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
    readonly_fields = ("status_value", "timeline", "headers_masked", "body_shown")

    @admin.display(description="id", ordering="id")
    def short_id(self, task):
        return str(task.id)[:8]

    # The API's values ("http_5xx"), not the choices' labels ("Http 5Xx"): what operators search logs for.
    @admin.display(description="status", ordering="status")
    def status_value(self, task):
        return console.status_badge(task.status)

    @admin.display(description="last outcome", ordering="last_outcome")
    def outcome_value(self, task):
        return console.outcome_badge(task.last_outcome, task.last_status_code)

    @admin.display(description="attempts over time")
    def timeline(self, task):
        return render_to_string("console/timeline.html", {"timeline": task_timeline(task=task)})

    @admin.display(description="headers")
    def headers_masked(self, task):
        return pretty_json(mask_headers(task.headers))

    @admin.display(description="body")
    def body_shown(self, task):
        body = task.payload
        if task.body_format == "json" and body:
            try:
                body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return _pre(_short(body, BODY_SHOWN * 5))

    def get_search_results(self, request, queryset, search_term):
        return task_search(queryset, search_term), False

    # --- actions: each calls a service, one message with counts and refusals -------------------------

    def has_operate_permission(self, request):
        return request.user.has_perm("callbacks.change_callbacktask")

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
        return [
            path("replay-dead/", view, name="callbacks_callbacktask_replay_dead"),
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
            context["count"] = dead_letters(tenant=tenant, since=since).count()
        return TemplateResponse(request, "admin/callbacks/callbacktask/replay_dead.html", context)


class ReplayForm(forms.Form):
    tenant = forms.ModelChoiceField(
        Tenant.objects.order_by("name"), required=False, empty_label="every tenant"
    )
    since = forms.DateTimeField(
        required=False, help_text="only tasks that died at or after this time (YYYY-MM-DD HH:MM, UTC)"
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since is not None and since > timezone.now():
            raise forms.ValidationError("This is in the future: no task has died then yet.")
        return since


@admin.register(TaskExecution)
class TaskExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task_link",
        "tenant",
        "attempt",
        "started_at",
        "duration",
        "outcome_value",
        "status_code",
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
        "started_at",
        "duration_ms",
        "outcome",
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
        "request_headers_masked",
        "response_headers_masked",
        "response_body_shown",
    )

    duration = ExecutionInline.duration
    request_headers_masked = ExecutionInline.request_headers_masked
    response_headers_masked = ExecutionInline.response_headers_masked
    response_body_shown = ExecutionInline.response_body_shown

    @admin.display(description="task")
    def task_link(self, execution):
        url = reverse("admin:callbacks_callbacktask_change", args=[execution.task_id])
        return format_html('<a href="{}">{}</a>', url, str(execution.task_id)[:8])

    @admin.display(description="outcome", ordering="outcome")
    def outcome_value(self, execution):
        return execution.outcome

    @admin.display(description="error")
    def error_short(self, execution):
        return _short(execution.error, 80)
