"""The tenant's callbacks: the list with search and filters, one callback's page, retry, cancel, and the
replay of dead letters. Every row comes through a tenant-scoped selector."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from callbacks.domain.vocabulary import RETRYABLE_STATUSES, UNFINISHED_STATUSES, ActorType, TaskStatus
from callbacks.errors import ApplicationError
from callbacks.masking import mask_headers, mask_text
from callbacks.selectors import event_list, execution_list, task_get, task_list, task_search, task_timeline
from callbacks.services.tasks import dead_letters, task_cancel, task_replay_dead, task_retry
from callbacks.templatetags.console import readable_body, shortened
from portal.forms import ReplayConfirmForm, ReplayForm, TaskFilterForm
from portal.session import tenant_view
from portal.views.common import page, page_links, post_only, pretty_json, rows_of_page

# Dead letters listed on the replay page before the tenant confirms.
REPLAY_LISTED = 100


@tenant_view
def task_list_view(request, tenant):
    form = TaskFilterForm(request.GET or None)
    rows, has_next, number = [], False, 1
    if form.is_bound and not form.is_valid():
        messages.error(request, "Some filters are not valid; nothing is listed until they are corrected.")
    else:
        data = form.cleaned_data if form.is_bound else {}
        number = data.get("page") or 1
        queryset = task_list(tenant=tenant, filters=form.filters() if form.is_bound else {})
        queryset = task_search(queryset, data.get("q") or "")
        rows, has_next = rows_of_page(queryset, number)
    context = {"form": form, "tasks": rows, "pages": page_links(request, number, has_next)}
    return page(request, "portal/tasks.html", context, nav="tasks")


@tenant_view
def task_view(request, tenant, task_id):
    task = task_get(tenant=tenant, task_id=task_id)
    context = {
        "task": task,
        "headers": pretty_json(mask_headers(task.headers)),
        "body": readable_body(task),
        "timeline": task_timeline(task=task),
        "attempts": [_attempt(execution) for execution in execution_list(task=task)],
        "events": list(event_list(task=task)),
        "can_retry": task.status in RETRYABLE_STATUSES,
        "can_cancel": task.status in UNFINISHED_STATUSES,
    }
    return page(request, "portal/task.html", context, nav="tasks")


@tenant_view
def task_retry_view(request, tenant, task_id):
    task = task_get(tenant=tenant, task_id=task_id)
    refused = post_only(request)
    if refused:
        return refused
    return _act_on(request, task, task_retry, done="The callback is scheduled to be sent again now.")


@tenant_view
def task_cancel_view(request, tenant, task_id):
    """A confirmation page first: a cancelled callback is never sent."""
    task = task_get(tenant=tenant, task_id=task_id)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        return page(request, "portal/cancel_confirm.html", {"task": task}, nav="tasks")
    return _act_on(request, task, task_cancel, done="The callback is cancelled.")


def _act_on(request, task, service, *, done: str):
    """Run a task service as the tenant; its refusal (a 409 and the like) or `done` shown on the task's page."""
    try:
        service(task=task, actor_type=ActorType.TENANT, actor=request.portal_link.actor)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("portal:task", task_id=task.pk)


@tenant_view
def replay_view(request, tenant):
    """Which dead letters (all, or those that died within a duration), then a page listing them that
    asks before replaying; the replay itself on "yes"."""
    if request.method == "POST":
        return _replay(request, tenant)
    form = ReplayForm(request.GET if "since" in request.GET else None)
    context = {"form": form}
    if form.is_bound and form.is_valid():
        since = form.cleaned_data["since"]
        dead = dead_letters(tenant=tenant, since=since).order_by("-finished_at", "-id")
        listed = list(dead[: REPLAY_LISTED + 1])
        context.update(
            {
                "confirm": True,
                "since_at": since,
                "dead": listed[:REPLAY_LISTED],
                "more": len(listed) > REPLAY_LISTED,
                "count": dead.count() if len(listed) > REPLAY_LISTED else len(listed),
            }
        )
    return page(request, "portal/replay.html", context, nav="replay")


def _replay(request, tenant):
    form = ReplayConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The replay was not confirmed; nothing was replayed.")
        return redirect("portal:replay")
    count = task_replay_dead(
        tenant=tenant,
        since=form.cleaned_data["since_at"],
        actor_type=ActorType.TENANT,
        actor=request.portal_link.actor,
    )
    messages.success(request, f"Replayed {count} dead letter(s): they are scheduled to be sent now.")
    return redirect(reverse("portal:tasks") + f"?status={TaskStatus.SCHEDULED}")


def _attempt(execution) -> dict:
    """One attempt as sent and answered, with secrets masked as everywhere they are shown."""
    body = shortened(mask_text(execution.response_body))
    if execution.response_truncated:
        body += "\n[truncated when stored]"
    return {
        "execution": execution,
        "request_url": mask_text(execution.request_url),
        "request_headers": pretty_json(mask_headers(execution.request_headers)),
        "response_headers": pretty_json(mask_headers(execution.response_headers)),
        "response_body": body,
    }
