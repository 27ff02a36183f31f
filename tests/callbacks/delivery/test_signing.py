"""Standard Webhooks signatures, verified by independent implementations: the reference library for v1,
PyNaCl (libsodium) for v1a."""

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks import keys
from callbacks.delivery import signing
from callbacks.delivery.executor import build_headers, send_attempt
from callbacks.services.tenants import signing_key_rotate, signing_scheme_set, signing_secret_rotate
from tests.factories import make_task
from tests.verifiers import v1a_signatures, verifies


def test_sign_matches_the_reference_implementation():
    secret = keys.new_signing_secret()
    body = '{"a":1,"b":"Zoë"}'
    ours = signing.sign(secret=secret, msg_id="msg_1", timestamp=1700000000, body=body.encode())
    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1700000000, UTC), body)
    assert ours == theirs


def test_known_vector():
    # The example from the Standard Webhooks specification's reference test suite.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        signing.sign(secret=secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_signature_header_lists_each_secret():
    header = signing.signature_header(["whsec_AAAA", "", "whsec_BBBB"], msg_id="m", timestamp=1, body=b"x")
    assert len(header.split(" ")) == 2
    assert all(part.startswith("v1,") for part in header.split(" "))


@pytest.mark.django_db
def test_receiver_verifies_the_callback(tenant, receiver):
    send_attempt(make_task(tenant=tenant, url=receiver.url, payload='{"order":42}'), attempt=1)
    got = receiver.wait_for(1)[0]
    assert Webhook(tenant.signing_secret).verify(got.body, got.headers) == {"order": 42}
    with pytest.raises(WebhookVerificationError):
        Webhook(keys.new_signing_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(tenant.signing_secret).verify(got.body + b" ", got.headers)


@pytest.mark.django_db
def test_rotation_both_secrets_sign(tenant, receiver):
    old, new = tenant.signing_secret, keys.new_signing_secret()
    tenant.signing_secret, tenant.previous_signing_secret = new, old
    tenant.previous_signing_secret_until = timezone.now() + timedelta(hours=1)
    tenant.save()
    send_attempt(make_task(tenant=tenant, url=receiver.url, payload='{"order":42}'), attempt=1)
    got = receiver.wait_for(1)[0]

    assert len(got.headers["webhook-signature"].split(" ")) == 2
    # A receiver still on the old secret, and one already on the new one, both verify.
    assert Webhook(old).verify(got.body, got.headers) == {"order": 42}
    assert Webhook(new).verify(got.body, got.headers) == {"order": 42}
    with pytest.raises(WebhookVerificationError):
        Webhook(keys.new_signing_secret()).verify(got.body, got.headers)


@pytest.mark.django_db
def test_every_attempt_is_signed_afresh(tenant, receiver):
    task = make_task(tenant=tenant, url=receiver.url, payload='"x"')
    send_attempt(task, attempt=1)
    send_attempt(task, attempt=2)
    for got in receiver.wait_for(2):
        assert Webhook(tenant.signing_secret).verify(got.body, got.headers) == "x"


# --- v1a: ed25519, verified with PyNaCl (libsodium), not with the library that signs ----------------


def public_key_from_api(api) -> dict:
    response = api.get("/api/v1/signing/")
    assert response.status_code == 200, response.content
    return response.json()["v1a"]


@pytest.mark.django_db
def test_a_v1a_callback_verifies_with_the_public_key_the_api_gives(tenant, api, receiver):
    api.patch("/api/v1/signing/", {"scheme": "v1a"}, format="json")
    tenant.refresh_from_db()
    public_key = public_key_from_api(api)["public_key"]
    send_attempt(make_task(tenant=tenant, url=receiver.url, payload='{"order":42,"name":"Zoë"}'), attempt=1)
    got = receiver.wait_for(1)[0]

    [signature] = v1a_signatures(got)
    assert verifies(public_key, got, signature)
    assert not verifies(public_key, replace(got, body=got.body + b" "), signature)
    assert not verifies(keys.public_key_of(keys.new_signing_private_key()), got, signature)
    # A v1 receiver is not fooled into accepting it either.
    with pytest.raises(WebhookVerificationError):
        Webhook(tenant.signing_secret).verify(got.body, got.headers)


@pytest.mark.django_db
def test_during_a_v1a_rotation_each_signature_verifies_with_its_own_public_key(tenant, api, receiver):
    api.patch("/api/v1/signing/", {"scheme": "v1a"}, format="json")
    old_public = public_key_from_api(api)["public_key"]
    rotated = api.post("/api/v1/signing/rotate/", {"scheme": "v1a", "overlap_seconds": 3600}, format="json")
    assert rotated.status_code == 200, rotated.content
    new_public = rotated.json()["v1a"]["public_key"]
    assert rotated.json()["v1a"]["previous_public_key"] == old_public and new_public != old_public
    assert public_key_from_api(api)["public_key"] == new_public

    tenant.refresh_from_db()
    send_attempt(make_task(tenant=tenant, url=receiver.url, payload='{"order":42}'), attempt=1)
    got = receiver.wait_for(1)[0]
    new_signature, old_signature = v1a_signatures(got)
    assert verifies(new_public, got, new_signature) and not verifies(new_public, got, old_signature)
    assert verifies(old_public, got, old_signature) and not verifies(old_public, got, new_signature)


@pytest.mark.django_db
def test_the_previous_key_stops_signing_when_the_overlap_ends(tenant, receiver):
    signing_scheme_set(tenant=tenant, scheme="v1a", actor_type="user", actor="ops")
    old = tenant.signing_private_key
    signing_key_rotate(tenant=tenant, scheme="v1a", overlap_seconds=3600, actor_type="user", actor="ops")
    tenant.refresh_from_db()
    # An hour later (the overlap is read against the attempt's timestamp).
    later = int(time.time()) + 3601
    header = build_headers(make_task(tenant=tenant, url=receiver.url, payload="{}"), 1, later)[
        "webhook-signature"
    ]
    assert len(header.split(" ")) == 1
    now_header = build_headers(make_task(tenant=tenant, url=receiver.url, payload="{}"), 1, int(time.time()))
    assert len(now_header["webhook-signature"].split(" ")) == 2
    assert tenant.previous_signing_private_key == old


@pytest.mark.django_db
def test_a_v1_rotation_overlap_ends_by_itself_too(tenant, receiver):
    old = tenant.signing_secret
    new = signing_secret_rotate(tenant=tenant, overlap_seconds=60, actor_type="user", actor="ops")
    tenant.refresh_from_db()
    task = make_task(tenant=tenant, url=receiver.url, payload='"x"')
    during = build_headers(task, 1, int(time.time()))
    assert Webhook(old).verify(b'"x"', during) == "x" and Webhook(new).verify(b'"x"', during) == "x"
    after = build_headers(task, 1, int(time.time()) + 61)
    assert len(after["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(b'"x"', after)
