"""Property-based run of the served OpenAPI schema: whatever schemathesis sends, the API never answers 5xx,
and every answer is one the schema documents, in the documented shape."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callbacks.models import TaskStatus
from taskcenter.wsgi import application
from tests.factories import make_task_in_state

OPERATIONS = [
    ("POST", "/api/v1/callbacks/"),
    ("GET", "/api/v1/callbacks/"),
    ("POST", "/api/v1/callbacks/batch/"),
    ("GET", "/api/v1/callbacks/{task_id}/"),
    ("GET", "/api/v1/callbacks/{task_id}/executions/"),
    ("GET", "/api/v1/callbacks/{task_id}/events/"),
    ("POST", "/api/v1/callbacks/{task_id}/cancel/"),
    ("POST", "/api/v1/callbacks/{task_id}/retry/"),
]
# Bounded and reproducible: the same cases every run, well under a minute for all operations.
FUZZ_SETTINGS = settings(
    max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def served_schema(db):
    # The app is called in-process through WSGI, outside Django's test client: keep the request signals
    # from closing the connection that holds the test's transaction, as the test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(served_schema, new_tenant, method, path, mode):
    operation = served_schema[path][method]
    # Tasks of the caller's in states that cancel and retry treat differently: half the generated ids are
    # replaced by these, so calls reach the services instead of always answering 404.
    known = [
        make_task_in_state(tenant=new_tenant.tenant, status=status)
        for status in (TaskStatus.SCHEDULED, TaskStatus.DEAD)
    ]
    auth = {"Authorization": f"Bearer {new_tenant.api_key}"}

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        if "task_id" in (case.path_parameters or {}):
            seed = sum(map(ord, str(case.path_parameters["task_id"])))
            if seed % 2:
                case.path_parameters["task_id"] = str(known[seed % len(known)].id)
        case.call_and_validate(headers=auth, checks=CHECKS)

    check()
