from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from callbacks import demo
from monitoring.dashboard import dashboard_view

urlpatterns = [
    # Before the admin's own URLs, which would take "dashboard/" for an app label.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("callbacks.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="api-docs"),
    path("", include("monitoring.urls")),
]

if settings.DEMO_ENDPOINTS:
    urlpatterns.append(path("demo/echo/", demo.echo, name="demo-echo"))
