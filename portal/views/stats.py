"""The tenant's delivery figures over a window, from the roll-ups (monitoring.selectors) of its own
attempts only, drawn by monitoring.charts as on the operators' dashboard."""

from datetime import timedelta

from monitoring import selectors
from monitoring.charts import delivery_charts
from portal.session import tenant_view
from portal.views.common import page

# window -> (span, step); whole-hour steps read hour roll-ups, as the dashboard's do.
WINDOWS = {
    "1h": (timedelta(hours=1), timedelta(minutes=2)),
    "6h": (timedelta(hours=6), timedelta(minutes=10)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
}
DEFAULT_WINDOW = "24h"


@tenant_view
def stats_view(request, tenant):
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    span, step = WINDOWS[window]
    summary = selectors.stats(window=span, tenant=tenant)
    points = selectors.timeseries(window=span, step=step, tenant=tenant)
    context = {
        "window": window,
        "windows": list(WINDOWS),
        "step_seconds": int(step.total_seconds()),
        # The installation's worker pool (summary["pool"]) is the operators' business, not shown here.
        "summary": {key: value for key, value in summary.items() if key != "pool"},
        "charts": delivery_charts(points),
    }
    return page(request, "portal/stats.html", context, nav="stats")
