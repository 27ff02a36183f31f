"""The tenant's set-up as the service holds it: schedules (with their next runs), the URL whitelist, the
URLs gone (410), which the tenant may clear as through the API. Read-only but for that."""

from django.contrib import messages
from django.shortcuts import redirect

from callbacks.domain.schedule import next_runs
from callbacks.domain.vocabulary import ActorType
from callbacks.masking import mask_data
from callbacks.selectors import gone_url_get, gone_url_list, schedule_get, schedule_list
from callbacks.services.gone import gone_url_clear
from portal.selectors import schedule_tasks, whitelist_list
from portal.session import tenant_view
from portal.views.common import page, page_links, post_only, pretty_json, rows_of_page

NEXT_RUNS_LISTED = 3
NEXT_RUNS_SHOWN = 10


@tenant_view
def schedule_list_view(request, tenant):
    schedules = [
        {"schedule": schedule, "next_runs": [] if schedule.paused else next_runs(schedule, NEXT_RUNS_LISTED)}
        for schedule in schedule_list(tenant=tenant)
    ]
    return page(request, "portal/schedules.html", {"schedules": schedules}, nav="schedules")


@tenant_view
def schedule_view(request, tenant, schedule_id):
    schedule = schedule_get(tenant=tenant, schedule_id=schedule_id)
    context = {
        "schedule": schedule,
        "next_runs": [] if schedule.paused else next_runs(schedule, NEXT_RUNS_SHOWN),
        "template": pretty_json(mask_data(schedule.task_template)),
        "tasks": schedule_tasks(tenant=tenant, schedule=schedule),
    }
    return page(request, "portal/schedule.html", context, nav="schedules")


@tenant_view
def whitelist_view(request, tenant):
    return page(
        request, "portal/whitelist.html", {"entries": list(whitelist_list(tenant=tenant))}, nav="whitelist"
    )


@tenant_view
def gone_list_view(request, tenant):
    try:
        number = max(1, min(int(request.GET.get("page", "1")), 200))
    except ValueError:
        number = 1
    rows, has_next = rows_of_page(gone_url_list(tenant=tenant).order_by("-marked_at", "-id"), number)
    context = {"gone_urls": rows, "pages": page_links(request, number, has_next)}
    return page(request, "portal/gone.html", context, nav="gone")


@tenant_view
def gone_clear_view(request, tenant, gone_id):
    gone = gone_url_get(tenant=tenant, gone_id=gone_id)
    refused = post_only(request)
    if refused:
        return refused
    gone_url_clear(gone=gone, actor_type=ActorType.TENANT, actor=request.portal_link.actor)
    messages.success(request, f"{gone.url} is called again from now on.")
    return redirect("portal:gone")
