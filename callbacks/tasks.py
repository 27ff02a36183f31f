"""django-q2 task functions: thin wrappers that hand work to the delivery engine."""

from callbacks.delivery.worker import get_worker


def deliver_lane(
    token: str,
    task_ids: list[str],
    rate: float | None = None,
    tenant_id: str | None = None,
    origin: str | None = None,
) -> int:
    """Take one lane the dispatcher granted, with its first tasks (and the rate it may start more
    at, under a rate limit, its tenant and its origin); returns how many it carried."""
    return get_worker().deliver_lane(token, task_ids, rate, tenant_id, origin)
