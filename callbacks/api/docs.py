"""The API's documentation pages: Redoc (the reference) and Swagger UI (to try requests), both served with
every asset from the service itself, so an operator's browser fetches nothing from the internet."""

from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.cache import cache_control
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# Redoc's sidebar shows "API docs by Redocly" with a logo it fetches from Redocly's CDN; no option turns it off.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


class RedocPage(SpectacularRedocView):
    template_name = "api/redoc.html"

    @staticmethod
    def _redoc_standalone():
        return reverse("api-docs-redoc-bundle")


class SwaggerPage(SpectacularSwaggerView):
    template_name = "api/swagger_ui.html"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    source = Path(finders.find(REDOC_BUNDLE)).read_text(encoding="utf-8")
    return source.replace(REDOCLY_LOGO, EMPTY_IMAGE).encode()


@cache_control(public=True, max_age=3600)
def redoc_bundle(request):
    """Redoc's script as the sidecar ships it, but for the one image it would fetch from a CDN."""
    return HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
