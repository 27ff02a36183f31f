"""callbacks.selectors.task_search: each kind of term finds its task and no other, within the queryset's
tenant; short terms; the tasks the services make are found; on PostgreSQL each kind reads an index."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callbacks.models import CallbackTask, TaskOrigin, TaskSearchPath
from callbacks.selectors import task_search
from callbacks.services.tasks import task_create, task_create_batch
from callbacks.services.tenants import tenant_create
from tests.factories import make_task

pytestmark = pytest.mark.django_db


def found(queryset, term) -> set:
    return set(task_search(queryset, term).values_list("pk", flat=True))


@pytest.fixture
def wanted(tenant):
    return make_task(
        tenant=tenant,
        url="https://Shop-42.example.com/webhooks/refunds/4242?attempt=1",
        business_id="order-4242",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


@pytest.fixture
def others(tenant):
    """Tasks sharing parts of every kind with `wanted`, none of them a match."""
    return [
        make_task(
            tenant=tenant,
            url="https://shop-420.example.com/webhooks/orders/424",
            business_id="order-42420",
            trace_id="0af7651916cd43dd8448eb211c80319d",
        ),
        make_task(tenant=tenant, url="https://hooks.example.org/refunds/42", business_id="4242", trace_id=""),
    ]


@pytest.mark.parametrize(
    "kind",
    [
        "id prefix",
        "whole id",
        "id in capitals without dashes",
        "host",
        "host in other case",
        "path",
        "query",
        "whole URL",
        "start of a URL",
        "business id",
        "trace id",
    ],
)
def test_each_kind_finds_its_task_and_no_other(wanted, others, kind):
    term = {
        "id prefix": str(wanted.pk)[:8],
        "whole id": str(wanted.pk),
        "id in capitals without dashes": wanted.pk.hex.upper(),
        "host": "shop-42.example",
        "host in other case": "SHOP-42.Example",
        "path": "/refunds/4242",
        "query": "attempt=1",
        "whole URL": "https://shop-42.example.com/webhooks/refunds/4242?attempt=1",
        "start of a URL": "https://SHOP-42.example.com/webhooks/ref",
        "business id": "order-4242",
        "trace id": "0af7651916cd43dd8448eb211c80319c",
    }[kind]

    assert found(CallbackTask.objects.all(), term) == {wanted.pk}


def test_business_and_trace_ids_match_whole_only(wanted, others):
    assert found(CallbackTask.objects.all(), "order-42") == set()
    assert found(CallbackTask.objects.all(), "0af7651916cd43dd8448eb211c8031") == set()


def test_a_term_matching_nothing_finds_nothing(wanted, others):
    assert found(CallbackTask.objects.all(), "no-such-callback") == set()


def test_a_blank_term_leaves_the_queryset_as_it_is(wanted, others):
    assert found(CallbackTask.objects.all(), "  ") == {wanted.pk, *(task.pk for task in others)}


def test_one_or_two_characters_match_a_whole_label_only(tenant):
    by_label = make_task(
        tenant=tenant, url="https://y.example.com/", business_id="ab", id=uuid.UUID("cd" + "0" * 30)
    )
    make_task(tenant=tenant, url="https://x.example.com/", id=uuid.UUID("ab" + "0" * 30))
    in_url = make_task(tenant=tenant, url="https://ab.example.com/ab?ab=ab", id=uuid.UUID("ef" + "0" * 30))

    assert found(CallbackTask.objects.all(), "ab") == {by_label.pk}
    assert found(CallbackTask.objects.all(), "b.") == set()
    # From three characters on, the URL counts too.
    assert found(CallbackTask.objects.all(), "ab.") == {in_url.pk}


def test_an_id_prefix_counts_from_four_hex_digits(tenant):
    task = make_task(tenant=tenant, url="https://x.example.com/", id=uuid.UUID("abcd" + "0" * 28))

    assert found(CallbackTask.objects.all(), "abc") == set()
    assert found(CallbackTask.objects.all(), "ABCD") == {task.pk}


def test_a_tenants_queryset_never_returns_another_tenants_task(tenant, wanted):
    other = tenant_create(name="globex").tenant
    theirs = make_task(
        tenant=other,
        url=wanted.url,
        id=uuid.UUID(str(wanted.pk)[:8] + "-0000-4000-8000-000000000000"),
        business_id=wanted.business_id,
        trace_id=wanted.trace_id,
    )
    mine = CallbackTask.objects.filter(tenant=tenant)
    for term in (
        str(wanted.pk)[:8],
        "shop-42.example",
        "/refunds/4242",
        wanted.url,
        "order-4242",
        wanted.trace_id,
    ):
        assert found(mine, term) == {wanted.pk}, term
        assert found(CallbackTask.objects.filter(tenant=other), term) == {theirs.pk}, term
        assert found(CallbackTask.objects.all(), term) == {wanted.pk, theirs.pk}, term


def test_the_querysets_own_filters_still_apply(tenant, wanted):
    assert found(CallbackTask.objects.filter(status="dead"), "order-4242") == set()


def test_tasks_the_services_make_are_found_by_their_url(tenant):
    data = {"url": "https://API.acme.example/v1/hooks/paid?id=7"}
    one, _ = task_create(tenant=tenant, data=data)
    batch = task_create_batch(tenant=tenant, items=[{"url": "https://api.acme.example/v1/hooks/refunded"}])

    assert TaskSearchPath.objects.get(task=one).path == "/v1/hooks/paid?id=7"
    assert set(TaskOrigin.objects.values_list("origin", flat=True)) >= {"https://api.acme.example:443"}
    assert found(CallbackTask.objects.all(), "acme.example") == {one.pk, batch[0].pk}
    assert found(CallbackTask.objects.all(), "hooks/paid") == {one.pk}
    assert found(CallbackTask.objects.all(), "https://api.acme.example/v1/hooks/ref") == {batch[0].pk}


# --- PostgreSQL: every kind through an index -----------------------------------------------------

postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram index is PostgreSQL's")


@pytest.fixture
def many(tenant):
    """Enough tasks over a few hosts for the planner's statistics to mean something."""
    owners = [tenant, tenant_create(name="globex").tenant]
    tasks = [
        make_task(
            tenant=owners[n % 2],
            url=f"https://shop-{n % 7}.example.com/webhooks/orders/{n}",
            business_id=f"order-{n}",
            trace_id=uuid.uuid4().hex,
        )
        for n in range(300)
    ]
    with connection.cursor() as cursor:
        for table in ("callbacks_callbacktask", "callbacks_tasksearchpath", "callbacks_taskorigin"):
            cursor.execute(f"ANALYZE {table}")
    return tasks


def explain(sql: str, params) -> str:
    """EXPLAIN with sequential scans made the planner's last resort: a scan of a big table is then in
    the plan only when no index can answer the query."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def plan(queryset) -> str:
    """The plan of the admin's page query, as explain() gives it."""
    return explain(*queryset.order_by("-created_at", "-pk")[:50].query.sql_with_params())


def search_plans(queryset, term) -> str:
    """The plans of every query a search runs: the lookups task_search makes, then the page's."""
    with CaptureQueriesContext(connection) as lookups:
        found = task_search(queryset, term)
    return "\n".join([*(explain(query["sql"], None) for query in lookups.captured_queries), plan(found)])


@postgres
@pytest.mark.parametrize("scoped", [False, True], ids=["every tenant", "one tenant"])
@pytest.mark.parametrize(
    "kind, index",
    [
        ("host", "task_origin_status_idx"),
        ("path", "task_search_path_trgm_idx"),
        ("business id", "task_business_idx"),
        ("trace id", "task_trace_idx"),
        ("id prefix", "callbacks_callbacktask_pkey"),
    ],
)
def test_each_kind_is_read_through_its_index(tenant, many, kind, index, scoped):
    task = many[42]
    term = {
        "host": "shop-3.example",
        "path": "/orders/42",
        "business id": "order-42",
        "trace id": task.trace_id,
        "id prefix": str(task.pk)[:8],
    }[kind]
    queryset = CallbackTask.objects.filter(tenant=task.tenant) if scoped else CallbackTask.objects.all()

    explained = search_plans(queryset, term)

    # Within one tenant of 150 tasks the planner may rather read the tenant's tasks than the origin's.
    tenant_indexes = (
        {"task_tenant_status_idx", "task_tenant_created_idx"} if scoped and kind == "host" else set()
    )
    assert any(name in explained for name in {index, *tenant_indexes}), explained
    assert "Seq Scan on callbacks_callbacktask" not in explained, explained
    assert "Seq Scan on callbacks_tasksearchpath" not in explained, explained


@postgres
def test_the_plan_check_fails_for_a_search_that_scans(many):
    """The check above can fail: an OR over unindexed columns, as the search was, scans the table."""
    from django.db.models import Q

    scanning = CallbackTask.objects.filter(Q(business_id="order-42") | Q(url__contains="/orders/42"))

    assert "Seq Scan on callbacks_callbacktask" in plan(scanning)


@postgres
def test_the_trigram_index_exists_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'task_search_path_trgm_idx'")
        (definition,) = cursor.fetchone()
    assert "gin (path gin_trgm_ops)" in definition


def test_the_backfill_writes_the_rows_of_tasks_made_without_them(tenant, wanted):
    from io import StringIO

    from django.core.management import call_command

    fields = model_fields(wanted)
    bare = [
        CallbackTask.objects.create(
            **{
                **fields,
                "url": f"https://old-{n}.example.net/p/{n}",
                "origin": f"https://old-{n}.example.net:443",
            }
        )
        for n in range(3)
    ]
    assert found(CallbackTask.objects.all(), "old-1.example") == set()
    out = StringIO()

    call_command("search_backfill", "--batch-size", "2", stdout=out)

    assert out.getvalue().strip() == "wrote the search rows of 3 tasks"
    assert found(CallbackTask.objects.all(), "old-1.example") == {bare[1].pk}
    assert found(CallbackTask.objects.all(), "/p/2") == {bare[2].pk}
    assert found(CallbackTask.objects.all(), "shop-42.example") == {wanted.pk}
    call_command("search_backfill", stdout=out)
    assert out.getvalue().strip().endswith("wrote the search rows of 0 tasks")


def model_fields(task) -> dict:
    """A task's column values but its id, for a copy made directly (without the services' search rows)."""
    return {
        field.attname: getattr(task, field.attname)
        for field in CallbackTask._meta.concrete_fields
        if field.attname != "id"
    }


def test_lookups_finding_many_tasks_are_put_together_in_the_database(tenant, monkeypatch):
    from callbacks import selectors

    tasks = [
        make_task(tenant=tenant, url=f"https://many.example.com/p/{n}", business_id="many") for n in range(3)
    ]
    monkeypatch.setattr(selectors, "FEW_IDS", 2)

    searched = task_search(CallbackTask.objects.all(), "many")

    assert " UNION ALL " in str(searched.query)
    assert set(searched.values_list("pk", flat=True)) == {task.pk for task in tasks}
