"""The console's admin site: Django's, with the broker's own tables listed last, after everything an
operator looks at every day.

The apps' admin modules are loaded (admin.autodiscover) by the URLconf, which builds the admin's
pages, and before the admin's system checks, not when Django starts: run_dispatcher and qcluster
serve no page, and the admin modules bring with them every console page's imports (the HTTP client
of the test callback, the certificate checks, the portal's admin): ~7 MB in the dispatcher and a few
in the cluster, for nothing they use.
"""

from django.contrib import admin
from django.contrib.admin.apps import SimpleAdminConfig

# The apps of internals, shown (to superusers) below the rest.
LAST_APPS = ("django_q",)


class ConsoleSite(admin.AdminSite):
    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: app["app_label"] in LAST_APPS)

    def check(self, app_configs):
        # The admin's checks look at what is registered: make sure everything is, whichever of the
        # URLconf and the checks comes first.
        admin.autodiscover()
        return super().check(app_configs)


class ConsoleAdminConfig(SimpleAdminConfig):
    default_site = "taskcenter.admin.ConsoleSite"

    def ready(self):
        super().ready()
        # The default site is made when first used; the admin's checks only see the sites made, so
        # it is made now, as autodiscover would have made it.
        admin.site.name  # noqa: B018
