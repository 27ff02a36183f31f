"""The tenant's TLS material through the API (/api/v1/tls/...): set, read (never the key), replace,
remove, refusals naming the field; and each attempt's http_version in the executions."""

import trustme

from callbacks.models import Tenant
from tests.certificates import ca_pem, client_pem
from tests.factories import make_execution, make_task_in_state

TLS = "/api/v1/tls/"
CLIENT = "/api/v1/tls/client-certificate/"
CAS = "/api/v1/tls/ca-certificates/"


def test_set_read_replace_and_remove_a_client_certificate(api, tenant):
    assert api.get(TLS).json() == {"client_certificate": None, "ca_certificates": []}
    cert, key = client_pem()
    response = api.put(CLIENT, {"certificate": cert, "key": key}, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()["client_certificate"]
    assert set(shown) == {"subject", "issuer", "expires_at", "sha256", "expiring_soon"}
    assert api.get(TLS).json()["client_certificate"] == shown
    assert "PRIVATE KEY" not in response.content.decode() + api.get(TLS).content.decode()
    assert Tenant.objects.get(pk=tenant.pk).client_key.strip() == key.strip()

    again, again_key = client_pem()
    replaced = api.put(CLIENT, {"certificate": again, "key": again_key}, format="json").json()
    assert replaced["client_certificate"]["sha256"] != shown["sha256"]
    assert api.delete(CLIENT).status_code == 204
    assert api.get(TLS).json()["client_certificate"] is None


def test_a_bad_certificate_is_400_with_the_field_and_the_reason(api, tenant):
    cert, _ = client_pem()
    _, wrong_key = client_pem()
    response = api.put(CLIENT, {"certificate": cert, "key": wrong_key}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "client_key": ["the key does not belong to the certificate"]
    }
    assert api.put(CLIENT, {"certificate": cert}, format="json").status_code == 400
    assert (
        api.put(CLIENT, {"certificate": cert, "key": wrong_key, "verify": False}, format="json").status_code
        == 400
    )
    assert Tenant.objects.get(pk=tenant.pk).client_certificate == ""


def test_ca_certificates_are_set_shown_and_removed(api, tenant):
    ca = trustme.CA()
    response = api.put(CAS, {"certificates": ca_pem(ca) + ca_pem()}, format="json")
    assert response.status_code == 200, response.content
    assert len(response.json()["ca_certificates"]) == 2
    leaf, _ = client_pem(ca)
    refused = api.put(CAS, {"certificates": leaf}, format="json")
    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["ca_certificates"]
    assert api.delete(CAS).status_code == 204
    assert api.get(TLS).json()["ca_certificates"] == []


def test_one_tenants_material_is_not_anothers(api, other_api, tenant):
    cert, key = client_pem()
    api.put(CLIENT, {"certificate": cert, "key": key}, format="json")
    assert other_api.get(TLS).json()["client_certificate"] is None
    other_api.delete(CLIENT)
    assert Tenant.objects.get(pk=tenant.pk).client_certificate


def test_executions_carry_the_http_version(api, tenant):
    task = make_task_in_state(tenant=tenant, url="https://example.com/hook")
    make_execution(task=task, attempt=1, http_version="2")
    [execution] = api.get(f"/api/v1/callbacks/{task.id}/executions/").json()["results"]
    assert execution["http_version"] == "2"
