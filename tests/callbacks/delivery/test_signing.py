"""Standard Webhooks signatures, verified by the independent reference implementation."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks import keys
from callbacks.delivery import signing
from callbacks.delivery.executor import send_attempt
from tests.factories import make_task


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
