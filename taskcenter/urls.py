from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("callbacks.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="api-docs"),
    path("", include("monitoring.urls")),
]

if settings.DEMO_ENDPOINTS:
    from callbacks import demo

    urlpatterns.append(path("demo/echo/", demo.echo, name="demo-echo"))
