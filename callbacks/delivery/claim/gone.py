"""Whether a task about to start goes to a URL its tenant's receiver declared gone (410).

Read in the very statement that starts the tasks (an EXISTS per started task, no extra round trip),
so a URL marked gone is never sent to again by a task started after the mark was written; the
executor then ends the attempt `gone` without a request. Between a 410 and the commit of its mark, the
worker that got it remembers it (worker.py); attempts already under way are not stopped.
"""

from callbacks.models import CallbackTask, GoneUrl

# One column: does a gone mark exist for the started row {task}? (GoneUrl is small: a tenant's marks.)
URL_GONE_SQL = (
    f"EXISTS (SELECT 1 FROM {GoneUrl._meta.db_table} g "
    "WHERE g.tenant_id = {task}.tenant_id AND g.url = {task}.url) AS url_gone"
)


def flagged(rows: list[tuple]) -> list[CallbackTask]:
    """The tasks of (extra columns starting with URL_GONE_SQL's, task) rows, `url_gone` set."""
    tasks = []
    for extra, task in rows:
        if extra[0]:
            task.url_gone = True
        tasks.append(task)
    return tasks


def flag(tasks: list[CallbackTask]) -> None:
    """The same for tasks started through the ORM (databases other than PostgreSQL): one query."""
    if not tasks:
        return
    gone = set(
        GoneUrl.objects.filter(
            tenant_id__in={task.tenant_id for task in tasks}, url__in={task.url for task in tasks}
        ).values_list("tenant_id", "url")
    )
    for task in tasks:
        task.url_gone = (task.tenant_id, task.url) in gone
