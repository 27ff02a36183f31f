"""callbacks/bulk.py: the hot path's writes and reads give what the ORM gives, on PostgreSQL."""

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import DatabaseError, close_old_connections, connection

from callbacks import bulk, wakeup
from callbacks.models import CallbackTask, TaskEvent, TaskStatus, Tenant
from callbacks.services.tenants import tenant_create
from tests.factories import make_task

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and binary reads are PostgreSQL's"),
]


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def _all_columns(model) -> str:
    return ", ".join(field.column for field in model._meta.concrete_fields)


def test_fetch_instances_loads_every_field_as_the_orm_does(tenant):
    task = make_task(
        tenant=tenant,
        url="http://127.0.0.1:9/hook",
        headers={"X-One": "1", "nested": ["a", {"b": None}]},
        business_id="order-7",
        last_status_code=503,
        finished_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )
    sql = f"SELECT {_all_columns(CallbackTask)} FROM {CallbackTask._meta.db_table} WHERE id = %s"

    [loaded] = bulk.fetch_instances(CallbackTask, sql, [task.id])

    expected = _fields(CallbackTask.objects.get(id=task.id))
    assert _fields(loaded) == expected
    assert isinstance(loaded.id, uuid.UUID) and loaded.headers["nested"] == ["a", {"b": None}]
    assert all(
        value.utcoffset().total_seconds() == 0
        for value in _fields(loaded).values()
        if isinstance(value, datetime)
    )
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_named_parameters_repeated_and_long_statements_load_as_with_positional_ones(tenant):
    tasks = [make_task(tenant=tenant, url=f"http://127.0.0.1:9/{n}", business_id="order-%") for n in range(3)]
    padding = "-- " + "x" * 5000 + "\n"  # longer than psycopg's cache of converted statements
    sql = (
        f"{padding}SELECT {_all_columns(CallbackTask)} FROM {CallbackTask._meta.db_table} "
        "WHERE id = ANY(%(ids)s) AND business_id LIKE 'order-%%' AND (tenant_id = %(tenant)s "
        "OR tenant_id = %(tenant)s) ORDER BY url"
    )

    loaded = bulk.fetch_instances(CallbackTask, sql, {"tenant": tenant.id, "ids": [t.id for t in tasks[:2]]})

    assert [_fields(task) for task in loaded] == [
        _fields(task)
        for task in CallbackTask.objects.filter(id__in=[t.id for t in tasks[:2]]).order_by("url")
    ]
    converted, names = bulk.positional(sql)
    assert names == ("ids", "tenant") and "$3" not in converted
    assert "LIKE 'order-%'" in converted and "%(" not in converted


def test_in_bulk_is_the_orms_in_bulk(tenant):
    other = tenant_create(name="other").tenant
    ids = {tenant.id, other.id, uuid.uuid4()}  # an unknown id is left out, as in_bulk does

    loaded = bulk.in_bulk(Tenant, ids)

    expected = Tenant.objects.in_bulk(ids)
    assert loaded.keys() == expected.keys()
    assert {key: _fields(value) for key, value in loaded.items()} == {
        key: _fields(value) for key, value in expected.items()
    }


def test_insert_rows_writes_the_given_columns(tenant):
    task = make_task(tenant=tenant, url="http://127.0.0.1:9/hook")
    at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)

    bulk.insert_rows(
        TaskEvent,
        ("task_id", "at", "from_status", "to_status", "note"),
        [
            (task.id, at, TaskStatus.QUEUED, TaskStatus.RUNNING, "attempt 1"),
            (task.id, at, TaskStatus.RUNNING, TaskStatus.SUCCEEDED, 'it\'s a "quote"\tand a tab'),
        ],
    )

    rows = list(
        TaskEvent.objects.filter(task=task).order_by("id").values_list("from_status", "to_status", "note")
    )
    assert rows == [
        ("queued", "running", "attempt 1"),
        ("running", "succeeded", 'it\'s a "quote"\tand a tab'),
    ]


def test_insert_rows_refuses_rows_that_leave_a_column_out(tenant):
    task = make_task(tenant=tenant, url="http://127.0.0.1:9/hook")

    with pytest.raises(ValueError, match="note"):
        bulk.insert_rows(TaskEvent, ("task_id", "at", "from_status", "to_status"), [(task.id, None, "", "")])


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_under_a_binary_cursor_is_replaced_like_any_other(tenant):
    """A database restart: the error is Django's, and close_old_connections() gives a working connection."""
    assert set(bulk.in_bulk(Tenant, [tenant.id])) == {tenant.id}
    backend = connection.connection.info.backend_pid
    with psycopg.connect(**wakeup.connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    with pytest.raises(DatabaseError):
        bulk.in_bulk(Tenant, [tenant.id])
    close_old_connections()

    assert set(bulk.in_bulk(Tenant, [tenant.id])) == {tenant.id}
