"""The gone API: the tenant's URLs that answered 410, and clearing one; another tenant's are 404."""

import pytest

from callbacks.models import AuditLog, GoneUrl
from callbacks.services.gone import gone_url_mark
from tests.factories import make_task

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9200/hook"


def mark(tenant, url=URL):
    return gone_url_mark(tenant_id=tenant.id, url=url, task_id=make_task(tenant=tenant, url=url).id)


def test_the_tenant_lists_its_gone_urls_and_clears_one(api, tenant, other_api):
    gone = mark(tenant)
    mark(other_api.tenant, URL + "/theirs")

    listed = api.get("/api/v1/gone/")
    assert listed.status_code == 200
    assert [(item["id"], item["url"], item["task_id"]) for item in listed.json()["results"]] == [
        (gone.id, URL, str(gone.task_id))
    ]
    assert api.get(f"/api/v1/gone/{gone.id}/").json()["url"] == URL

    assert api.delete(f"/api/v1/gone/{gone.id}/").status_code == 204
    assert api.get("/api/v1/gone/").json()["results"] == []
    assert AuditLog.objects.get(action="gone_url.clear").actor_type == "tenant"
    assert api.delete(f"/api/v1/gone/{gone.id}/").status_code == 404


def test_another_tenants_mark_is_not_found(api, other_api):
    theirs = mark(other_api.tenant)

    for path in (f"/api/v1/gone/{theirs.id}/", "/api/v1/gone/nonsense/"):
        assert api.get(path).status_code == 404
        assert api.delete(path).status_code == 404
    assert GoneUrl.objects.filter(pk=theirs.pk).exists()
