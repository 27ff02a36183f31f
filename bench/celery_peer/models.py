from django.db import models


class Attempt(models.Model):
    """One delivery attempt, written by the task after each request (success or not)."""

    callback_id = models.UUIDField(db_index=True)
    url = models.URLField(max_length=2000)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        db_table = "celery_peer_attempt"

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.callback_id}: {self.status_code or self.error}"
