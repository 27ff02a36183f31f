"""What every answer under /api/ shares (callbacks/api/middleware.py, callbacks/api/errors.py): paths with or
without their trailing slash, the JSON 404 and 405, unknown query parameters refused, X-RateLimit-* headers."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from callbacks.models import CallbackTask
from callbacks.services.tenants import tenant_update_policy
from tests.factories import make_task_in_state

HOOK = {"url": "https://example.com/hook"}


def assert_error_shape(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["fields"], dict)
    return error


# --- trailing slash --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/callbacks", "/api/v1/callbacks/"])
def test_post_creates_with_or_without_the_slash(api, path):
    response = api.post(path, HOOK, format="json")
    assert response.status_code == 201, response.content
    assert CallbackTask.objects.count() == 1


def test_every_method_works_without_the_slash(api, tenant):
    task = make_task_in_state(tenant=tenant)
    base = f"/api/v1/callbacks/{task.id}"
    assert api.get(base).json()["id"] == str(task.id)
    assert api.get(f"{base}/executions").status_code == 200
    assert api.post(f"{base}/cancel").json()["status"] == "cancelled"
    assert api.post("/api/v1/callbacks/batch", {"callbacks": [HOOK]}, format="json").status_code == 201
    assert api.get("/api/v1/stats").status_code == 200
    assert api.get("/api/v1/queues").status_code == 200
    schedule = api.post(
        "/api/v1/schedules", {"name": "n", "cron": "* * * * *", "task_template": HOOK}, format="json"
    ).json()
    assert (
        api.patch(f"/api/v1/schedules/{schedule['id']}", {"name": "m"}, format="json").json()["name"] == "m"
    )
    assert api.delete(f"/api/v1/schedules/{schedule['id']}").status_code == 204


def test_no_answer_under_the_api_is_a_redirect(api, tenant):
    task = make_task_in_state(tenant=tenant)
    for path in ["/api/v1/callbacks", f"/api/v1/callbacks/{task.id}", "/api/v1/whitelist", "/api/v1/nope"]:
        for method in ("get", "post", "put", "patch", "delete"):
            status = getattr(api, method)(path, {}, format="json").status_code
            assert not 300 <= status < 400, (method, path, status)


# --- unknown paths and methods --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/", "/api/v1/", "/api/v1/nope/", "/api/v2/callbacks/", "/api/v1/callbacks/1/x/y"]
)
@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_paths_answer_the_json_404(api, path, method):
    error = assert_error_shape(getattr(api, method)(path), 404, "not_found")
    assert path.rstrip("/") in error["message"]


def test_unknown_paths_answer_json_without_a_key_too():
    assert_error_shape(APIClient().get("/api/v1/nope"), 404, "not_found")


def test_an_unknown_method_answers_the_json_405(api):
    assert_error_shape(api.put("/api/v1/callbacks/", HOOK, format="json"), 405, "method_not_allowed")
    assert_error_shape(api.delete("/api/v1/stats/"), 405, "method_not_allowed")


# --- query parameters -----------------------------------------------------------------------

LISTS = [
    "/api/v1/callbacks/",
    "/api/v1/schedules/",
    "/api/v1/whitelist/",
    "/api/v1/audit/",
    "/api/v1/breakers/",
    "/api/v1/queues/",
    "/api/v1/stats/",
]


@pytest.mark.parametrize("path", LISTS)
def test_unknown_query_parameters_are_refused_by_name(api, path):
    error = assert_error_shape(api.get(path, {"search": "x", "ordering": "-id"}), 400, "unknown_parameter")
    assert error["fields"] == {"ordering": ["unknown query parameter"], "search": ["unknown query parameter"]}


def test_a_filter_that_looks_plausible_does_not_return_everything(api, tenant):
    make_task_in_state(tenant=tenant)
    response = api.get("/api/v1/callbacks/", {"url": "https://elsewhere.example/"})
    assert_error_shape(response, 400, "unknown_parameter")


def test_declared_parameters_still_work(api, tenant):
    make_task_in_state(tenant=tenant)
    listed = api.get("/api/v1/callbacks/", {"status": "scheduled", "page_size": 1, "queue": "default"})
    assert listed.status_code == 200 and len(listed.json()["results"]) == 1
    assert api.get("/api/v1/stats/", {"window": "1h", "host": "example.com"}).status_code == 200


def test_a_request_without_a_key_is_told_401_first():
    assert APIClient().get("/api/v1/callbacks/", {"search": "x"}).status_code == 401


def test_query_parameters_are_refused_on_other_operations_too(api, tenant):
    task = make_task_in_state(tenant=tenant)
    assert_error_shape(api.get(f"/api/v1/callbacks/{task.id}/", {"fields": "id"}), 400, "unknown_parameter")
    response = api.post("/api/v1/callbacks/?dry_run=1", HOOK, format="json")
    assert_error_shape(response, 400, "unknown_parameter")
    assert not CallbackTask.objects.filter(url=HOOK["url"]).exists()


def api_views():
    """Every view class routed under api/v1/."""

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                yield route, getattr(pattern.callback, "cls", None)

    return list(walk(get_resolver().url_patterns, ""))


def test_every_api_operation_declares_its_query_parameters():
    views = api_views()
    assert len(views) > 15
    for route, view_class in views:
        assert isinstance(getattr(view_class, "query_parameters", None), dict), route


def test_the_schema_documents_exactly_the_declared_query_parameters(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    resolver = get_resolver()
    for path, operations in schema["paths"].items():
        view_class = resolver.resolve(path.replace("{", "").replace("}", "")).func.cls
        for method, operation in operations.items():
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            declared = set(view_class.query_parameters.get(method.upper(), ()))
            assert documented == declared, (method, path)


# --- rate limit headers ---------------------------------------------------------------------


def budget(response):
    return tuple(int(response[f"X-RateLimit-{name}"]) for name in ("Limit", "Remaining", "Reset"))


def test_every_answer_to_a_tenant_carries_its_budget(api, tenant):
    tenant_update_policy(tenant=tenant, data={"api_rate_limit": "6/min"}, actor_type="user", actor="test")
    answers = [
        api.get("/api/v1/callbacks/", {"search": "x"}),  # 400 of an unknown query parameter
        api.post("/api/v1/callbacks/", HOOK, format="json"),  # 201
        api.post("/api/v1/callbacks/", {}, format="json"),  # 400
        api.get("/api/v1/callbacks/00000000-0000-0000-0000-000000000000/"),  # 404
        api.get("/api/v1/nope/"),  # 404 of an unknown path
        api.get("/api/v1/stats/"),  # 200 from monitoring
    ]
    assert [answer.status_code for answer in answers] == [400, 201, 400, 404, 404, 200]
    assert [budget(answer)[:2] for answer in answers] == [(6, 5), (6, 4), (6, 3), (6, 2), (6, 1), (6, 0)]
    assert all(1 <= budget(answer)[2] <= 60 for answer in answers)
    refused = api.get("/api/v1/callbacks/")
    assert refused.status_code == 429
    limit, remaining, reset = budget(refused)
    assert (limit, remaining) == (6, 0)
    assert reset == int(refused["Retry-After"])


def test_the_installation_default_is_told_too(api, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "API_RATE_LIMIT": "100/s"}
    assert budget(api.get("/api/v1/callbacks/"))[:2] == (100, 99)
