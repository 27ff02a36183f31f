"""One task per callback: POST it, write the attempt's row, let Celery retry what failed."""

import requests
from celery import shared_task
from django.utils import timezone

from bench.celery_peer.models import Attempt


@shared_task(
    bind=True,
    autoretry_for=(requests.RequestException,),
    retry_backoff=True,  # countdowns of 1, 2, 4 ... s, jittered, at most retry_backoff_max
    retry_backoff_max=60,
    max_retries=3,
)
def deliver(self, callback_id: str, url: str, payload: dict) -> None:
    started = timezone.now()
    status_code, error = None, ""
    try:
        response = requests.post(url, json=payload, timeout=(10, 30))
        status_code = response.status_code
        response.raise_for_status()
    except requests.RequestException as exc:
        error = str(exc)
        raise
    finally:
        Attempt.objects.create(
            callback_id=callback_id,
            url=url,
            attempt=self.request.retries + 1,
            status_code=status_code,
            error=error,
            started_at=started,
            finished_at=timezone.now(),
        )
