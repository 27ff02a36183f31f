from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

# The django-q2 schedule of the daily purge (monitoring.retention.purge_daily). No cluster: the
# default cluster's scheduler runs it, in one of its worker processes, which takes no batch
# meanwhile (the callbacks it has in flight go on). Its own timeout, above the cluster's, keeps
# django-q2 from killing that process (and the callbacks it is sending) during a long purge.
DAILY_PURGE_NAME = "monitoring: daily purge"
DAILY_PURGE = {
    "func": "monitoring.retention.purge_daily",
    "schedule_type": "H",  # django_q.models.Schedule.HOURLY: purge_daily decides when a day is up
    "repeats": -1,
    "kwargs": "{'q_options': {'timeout': 21600}}",  # six hours
    "cluster": None,
}


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(register_daily_purge, sender=self, dispatch_uid="monitoring-daily-purge")


def register_daily_purge(sender, apps=global_apps, using="default", **kwargs) -> None:
    """Create or correct the daily purge's schedule after every `migrate` (and `flush`, which
    sends the same signal without the migration state): idempotent, and the schedule follows
    the code on each deploy (its next run is kept)."""
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.using(using).update_or_create(name=DAILY_PURGE_NAME, defaults=DAILY_PURGE)
