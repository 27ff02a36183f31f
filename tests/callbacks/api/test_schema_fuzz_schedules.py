"""Property-based run of the schedule and queue operations of the served schema: never a 5xx, and every
answer documented, in the documented shape (as tests/callbacks/api/test_schema_fuzz.py does for callbacks)."""

import pytest
from hypothesis import given
from schemathesis import GenerationMode

from callbacks.services.schedules import schedule_create
from tests.callbacks.api.test_schema_fuzz import CHECKS, FUZZ_SETTINGS, served_schema  # noqa: F401

OPERATIONS = [
    ("POST", "/api/v1/schedules/"),
    ("GET", "/api/v1/schedules/"),
    ("GET", "/api/v1/schedules/{schedule_id}/"),
    ("PATCH", "/api/v1/schedules/{schedule_id}/"),
    ("DELETE", "/api/v1/schedules/{schedule_id}/"),
    ("POST", "/api/v1/schedules/{schedule_id}/pause/"),
    ("POST", "/api/v1/schedules/{schedule_id}/resume/"),
    ("GET", "/api/v1/queues/"),
    ("POST", "/api/v1/queues/{name}/purge/"),
]


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(served_schema, new_tenant, method, path, mode):  # noqa: F811
    operation = served_schema[path][method]
    known = schedule_create(
        tenant=new_tenant.tenant,
        data={"name": "known", "cron": "0 9 * * *", "task_template": {"url": "http://127.0.0.1:9/"}},
        actor_type="user",
        actor="test",
    )
    auth = {"Authorization": f"Bearer {new_tenant.api_key}"}

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        parameters = case.path_parameters or {}
        # Half the generated ids are replaced by the caller's schedule, so calls reach the services.
        if "schedule_id" in parameters and sum(map(ord, str(parameters["schedule_id"]))) % 2:
            parameters["schedule_id"] = str(known.id)
        case.call_and_validate(headers=auth, checks=CHECKS)

    check()
