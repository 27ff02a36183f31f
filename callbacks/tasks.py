"""django-q2 task functions: thin wrappers that hand work to the delivery engine."""

from callbacks.delivery.worker import get_worker


def deliver_batch(token: str, task_ids: list[str]) -> int:
    """Deliver the tasks of one dispatcher claim; returns how many were started."""
    return get_worker().deliver_batch(token, task_ids)
