"""The console's admin site: Django's, with the broker's own tables listed last, after everything an
operator looks at every day."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# The apps of internals, shown (to superusers) below the rest.
LAST_APPS = ("django_q",)


class ConsoleSite(admin.AdminSite):
    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: app["app_label"] in LAST_APPS)


class ConsoleAdminConfig(AdminConfig):
    default_site = "taskcenter.admin.ConsoleSite"
