"""Helpers for the end-to-end tests: callbacks created through the API in batches, and the count of those
not finished yet."""

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import CallbackTask


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
