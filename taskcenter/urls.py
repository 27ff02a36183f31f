from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from callbacks import demo
from callbacks.api import docs
from callbacks.api.errors import UnknownApiPathApi
from callbacks.api.middleware import NOT_FOUND_URL_NAME
from monitoring.dashboard import dashboard_view
from monitoring.origin_page import origin_view, origins_view

# The apps' admin modules, here rather than when Django starts (taskcenter.admin).
admin.autodiscover()

urlpatterns = [
    # Before the admin's own URLs, which would take "dashboard/" for an app label.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/origins/", admin.site.admin_view(origins_view), name="admin-origins"),
    path("admin/origins/<str:origin>/", admin.site.admin_view(origin_view), name="admin-origin"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("callbacks.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", docs.RedocPage.as_view(url_name="schema"), name="api-docs"),
    path("api/docs/swagger/", docs.SwaggerPage.as_view(url_name="schema"), name="api-docs-swagger"),
    path("api/docs/redoc.standalone.js", docs.redoc_bundle, name="api-docs-redoc-bundle"),
    # The tenants' portal: signed in with a link an operator gives, never with an admin login.
    path("portal/", include("portal.urls")),
    path("", include("monitoring.urls")),
    # Last: whatever under /api/ matched nothing above answers the API's JSON 404.
    re_path(r"^api/", UnknownApiPathApi.as_view(), name=NOT_FOUND_URL_NAME),
]

if settings.DEMO_ENDPOINTS:
    urlpatterns.append(path("demo/echo/", demo.echo, name="demo-echo"))
