"""The signing API: the scheme, the public keys (whpk_), rotation with an overlap; never a private key."""

import base64

import pytest

from callbacks import keys
from callbacks.models import AuditLog
from tests.leaks import private_texts

pytestmark = pytest.mark.django_db


def test_get_shows_the_scheme_and_the_public_key_only(api, tenant):
    response = api.get("/api/v1/signing/")

    assert response.status_code == 200
    body = response.json()
    assert body["scheme"] == "v1"
    assert body["v1a"]["public_key"] == keys.public_key_of(tenant.signing_private_key)
    assert len(base64.b64decode(body["v1a"]["public_key"].removeprefix("whpk_"))) == 32
    assert body["v1a"]["previous_public_key"] is None and body["v1"]["previous_signs_until"] is None
    text = response.content.decode()
    assert not any(part in text for part in private_texts(tenant.signing_private_key))
    assert tenant.signing_secret not in text


def test_switching_scheme_is_audited(api, tenant):
    response = api.patch("/api/v1/signing/", {"scheme": "v1a"}, format="json")

    assert response.status_code == 200 and response.json()["scheme"] == "v1a"
    tenant.refresh_from_db()
    assert tenant.signing_scheme == "v1a"
    row = AuditLog.objects.get(action="tenant.signing_scheme")
    assert row.actor_type == "tenant" and row.after == {"signing_scheme": "v1a"}


def test_rotating_v1a_gives_the_new_public_key_and_keeps_the_old_signing_for_the_overlap(api, tenant):
    old_private = tenant.signing_private_key

    response = api.post("/api/v1/signing/rotate/", {"scheme": "v1a", "overlap_seconds": 600}, format="json")

    assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    body = response.json()
    assert body["v1a"]["public_key"] == keys.public_key_of(tenant.signing_private_key)
    assert body["v1a"]["previous_public_key"] == keys.public_key_of(old_private)
    assert body["v1a"]["previous_signs_until"] is not None
    assert "secret" not in body
    text = response.content.decode()
    assert not any(part in text for part in private_texts(old_private, tenant.signing_private_key))

    retired = api.post("/api/v1/signing/retire-previous/", {"scheme": "v1a"}, format="json")
    assert retired.status_code == 200 and retired.json()["v1a"]["previous_public_key"] is None


def test_rotating_v1_shows_the_new_secret_once(api, tenant):
    response = api.post("/api/v1/signing/rotate/", {"scheme": "v1"}, format="json")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    tenant.refresh_from_db()
    assert response.json()["secret"] == tenant.signing_secret
    assert response.json()["v1"]["previous_signs_until"] is not None  # the default overlap
    assert tenant.signing_secret not in api.get("/api/v1/signing/").content.decode()


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/v1/signing/", {"scheme": "v2"}, "scheme"),
        ("/api/v1/signing/", {"scheme": "v1a", "key": "x"}, "key"),
        ("/api/v1/signing/rotate/", {"scheme": "v1a", "overlap_seconds": -1}, "overlap_seconds"),
        ("/api/v1/signing/rotate/", {"scheme": "v1a", "overlap_seconds": 10**9}, "overlap_seconds"),
        ("/api/v1/signing/rotate/", {"overlap_seconds": 60}, "scheme"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, tenant, path, payload, field):
    before = (tenant.signing_scheme, tenant.signing_private_key, tenant.signing_secret)
    method = api.patch if path == "/api/v1/signing/" else api.post

    response = method(path, payload, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    tenant.refresh_from_db()
    assert (tenant.signing_scheme, tenant.signing_private_key, tenant.signing_secret) == before
    assert not AuditLog.objects.exists()
