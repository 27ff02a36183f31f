"""What every answer under /api/ shares, whichever view gives it.

- A path works with or without its trailing slash, for every method, without a redirect: HTTP clients turn a
  redirected POST into a GET, so a callback registered at `/api/v1/callbacks` would silently become a list.
- An answer to a tenant's request carries its rate budget (X-RateLimit-*, from callbacks.api.throttling).
"""

from django.urls import Resolver404, resolve

API_PREFIX = "/api/"
NOT_FOUND_URL_NAME = "api-not-found"


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            _add_missing_slash(request)
        response = self.get_response(request)
        budget = getattr(request, "rate_budget", None)
        if budget is not None:
            for name, value in budget.headers().items():
                response[name] = value
        return response


def _add_missing_slash(request) -> None:
    """Serve `/api/v1/callbacks` as `/api/v1/callbacks/` when only the latter is an API path."""
    path = request.path_info
    if path.endswith("/") or _url_name(path, request) != NOT_FOUND_URL_NAME:
        return
    if _url_name(path + "/", request) in (None, NOT_FOUND_URL_NAME):
        return
    request.path_info = path + "/"
    request.path = request.path + "/"


def _url_name(path: str, request) -> str | None:
    try:
        return resolve(path, getattr(request, "urlconf", None)).url_name
    except Resolver404:
        return None
