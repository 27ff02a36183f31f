"""Helpers for the end-to-end tests: callbacks created through the API in batches, the count of those
not finished yet, and a worker process caught sending."""

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import CallbackTask, Heartbeat
from tests.processes import descendants, wait_until


def create_callbacks(api, count, url, **fields):
    """`count` callbacks to `url` posted through the batch API, 250 at a time; returns their ids."""
    created = []
    for start in range(0, count, 250):
        batch = [{"url": url, "body": {"n": n}, **fields} for n in range(start, min(count, start + 250))]
        response = api.post("/api/v1/callbacks/batch/", {"callbacks": batch}, format="json")
        assert response.status_code == 201, response.content
        created.extend(item["id"] for item in response.json()["callbacks"])
    return created


def unfinished():
    """How many tasks are not in a final status yet."""
    return CallbackTask.objects.exclude(status__in=FINAL_STATUSES).count()


def worker_sending(cluster, *, at_least: int):
    """The pid of a worker process of `cluster` with at least that many callbacks in flight right now,
    by its heartbeat (it reports them); None if there is none."""
    live = set(descendants(cluster.pid))
    for name, info in Heartbeat.objects.filter(role="worker").values_list("name", "info"):
        pid = int(name.rsplit(":", 1)[1])
        if pid in live and info.get("in_flight", 0) >= at_least:
            return pid
    return None


def wait_for_cluster(queue: str = "default", *, processes: int = 1) -> None:
    """Until a worker of `queue`'s cluster beats, the leader cannot tell served queues from others
    (with no worker alive at all it claims for every queue). With `processes`, until that many of its
    worker processes beat: lanes granted before the others are up all go to the first, and stay there
    while they linger."""
    wait_until(
        lambda: Heartbeat.objects.filter(role="worker", info__queue=queue).count() >= processes,
        timeout=60,
        message=f"{processes} worker process(es) of the {queue} cluster up",
    )
