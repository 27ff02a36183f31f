"""The monitoring app's table: when maintenance (the daily purge) last ran."""

from django.db import models


class MaintenanceRun(models.Model):
    """When a periodic job (the daily purge) last ran, shared by every process that may run it."""

    name = models.CharField(max_length=50, primary_key=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return self.name
