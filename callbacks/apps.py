from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "callbacks"
    verbose_name = "Callbacks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import post_spawn

        from callbacks import checks  # noqa: F401  (registers the system checks)

        post_spawn.connect(_start_delivery_worker, dispatch_uid="callbacks-start-delivery-worker")


def _start_delivery_worker(sender, proc_name, **kwargs):
    """Each django-q2 worker process starts its delivery side at once, not at its first batch,
    so an idle worker reports itself alive (heartbeats) and its pool state from the start."""
    from callbacks.delivery.worker import get_worker

    get_worker()
