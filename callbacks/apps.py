from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "callbacks"
    verbose_name = "Callbacks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Importing it registers the system checks: in ready(), once the apps are loaded, as Django advises.
        from callbacks import checks  # noqa: F401
