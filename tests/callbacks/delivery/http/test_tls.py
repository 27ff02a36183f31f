"""TLS identities (callbacks/delivery/http/tls.py): a tenant's client certificate presented by its own
callbacks alone, on HTTP/2 and HTTP/1.1; connections never shared between identities; a certificate
replaced or removed while callbacks are in flight; a tenant's own CA beside CALLBACKS_CA_BUNDLE."""

import io
import threading

import pytest
import trustme
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from callbacks import sealing
from callbacks.delivery.executor import send_attempt
from callbacks.domain.vocabulary import ActorType
from callbacks.models import Outcome, TaskExecution, TaskStatus, Tenant
from callbacks.services.certificates import (
    ca_certificates_set,
    client_certificate_remove,
    client_certificate_set,
)
from callbacks.services.tenants import tenant_create
from tests.callbacks.delivery.attempts import deliver
from tests.callbacks.delivery.http.sending import forget_pools
from tests.certificates import ca_pem, client_pem
from tests.factories import make_task
from tests.receivers import Reply
from tests.tls_receivers import TlsReceiver

pytestmark = pytest.mark.django_db

PROTOCOLS = {"h2": ("h2", "http/1.1"), "http/1.1": ("http/1.1",)}


@pytest.fixture(autouse=True)
def fresh_pools():
    forget_pools()
    yield
    forget_pools()


def give_certificate(tenant, ca: trustme.CA) -> Tenant:
    certificate, key = client_pem(ca)
    return client_certificate_set(
        tenant=tenant, certificate=certificate, key=key, actor_type=ActorType.USER, actor="ops"
    )


def reload(tenant) -> Tenant:
    return Tenant.objects.get(pk=tenant.pk)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_receiver_demanding_a_client_certificate_takes_only_the_tenant_with_one(
    tenant, tls_receiver, protocol
):
    client_ca = trustme.CA()
    receiver = tls_receiver(client_ca=client_ca, alpn=PROTOCOLS[protocol])
    give_certificate(tenant, client_ca)
    other = tenant_create(name="other").tenant

    make_task(tenant=tenant, url=receiver.url())
    [with_certificate] = deliver(lambda t: send_attempt(t, attempt=t.attempts))
    # Then the other tenant, to the same origin, just after: no connection of the first is reused.
    make_task(tenant=other, url=receiver.url(), max_retries=0)
    [without] = deliver(lambda t: send_attempt(t, attempt=t.attempts))

    with_certificate.refresh_from_db()
    without.refresh_from_db()
    assert with_certificate.status == TaskStatus.SUCCEEDED
    assert receiver.wait_for(1)[0].http_version == ("2" if protocol == "h2" else "1.1")
    assert without.status == TaskStatus.FAILED
    execution = TaskExecution.objects.get(task=without)
    assert execution.outcome == Outcome.TLS
    assert execution.error == "TLS error: tlsv13 alert certificate required"
    assert len(receiver.received) == 1


def test_a_replaced_certificate_is_used_from_the_next_attempt_and_the_one_in_flight_finishes(
    tenant, tls_receiver
):
    first_ca, second_ca = trustme.CA(), trustme.CA()
    receiver = tls_receiver(
        client_ca=first_ca, respond=lambda got: Reply(delay=1.0 if got.path == "/slow" else 0)
    )
    give_certificate(tenant, first_ca)
    slow = make_task(tenant=tenant, url=receiver.url(path="/slow"))
    slow.tenant = reload(tenant)
    in_flight = {}
    thread = threading.Thread(target=lambda: in_flight.update(result=send_attempt(slow, attempt=1)))
    thread.start()
    receiver.wait_for(1)

    give_certificate(tenant, second_ca)  # the receiver trusts only the first CA
    task = make_task(tenant=tenant, url=receiver.url())
    task.tenant = reload(tenant)
    replaced = send_attempt(task, attempt=1)
    thread.join(10)

    assert in_flight["result"].outcome == Outcome.SUCCESS
    assert replaced.outcome == Outcome.TLS

    give_certificate(tenant, first_ca)
    task.tenant = reload(tenant)
    assert send_attempt(task, attempt=2).outcome == Outcome.SUCCESS
    client_certificate_remove(tenant=tenant, actor_type=ActorType.USER, actor="ops")
    task.tenant = reload(tenant)
    removed = send_attempt(task, attempt=3)
    assert removed.outcome == Outcome.TLS and "certificate required" in removed.error


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_tenants_own_ca_is_trusted_for_its_callbacks_only(tenant, tmp_path, trusting_test_ca, protocol):
    private_ca = trustme.CA()
    with TlsReceiver(
        private_ca.issue_cert("127.0.0.1"), tmp_path=tmp_path, alpn=PROTOCOLS[protocol]
    ) as receiver:
        other = tenant_create(name="other").tenant
        ca_certificates_set(
            tenant=tenant,
            certificates=ca_pem(private_ca),
            actor_type=ActorType.TENANT,
            actor="t",
        )
        mine = make_task(tenant=tenant, url=receiver.url())
        mine.tenant = reload(tenant)
        theirs = make_task(tenant=other, url=receiver.url())

        assert send_attempt(mine, attempt=1).outcome == Outcome.SUCCESS
        refused = send_attempt(theirs, attempt=1)
        # The installation's bundle (the test CA) still verifies the usual receivers for the tenant.
        forget_pools()
    assert refused.outcome == Outcome.TLS
    assert refused.error.startswith("TLS certificate verify failed")
    assert len(receiver.received) == 1


def test_the_installation_bundle_still_holds_beside_a_tenants_ca(tenant, tls_receiver):
    receiver = tls_receiver()
    ca_certificates_set(
        tenant=tenant,
        certificates=ca_pem(),
        actor_type=ActorType.TENANT,
        actor="t",
    )
    task = make_task(tenant=tenant, url=receiver.url())
    task.tenant = reload(tenant)
    assert send_attempt(task, attempt=1).outcome == Outcome.SUCCESS


def test_the_key_is_sealed_at_rest(tenant, test_ca):
    give_certificate(tenant, trustme.CA())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_key FROM callbacks_tenant WHERE id = %s",
            [Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)],
        )
        [stored] = cursor.fetchone()
    assert stored.startswith("sealed:") and "PRIVATE KEY" not in stored
    assert "PRIVATE KEY" in reload(tenant).client_key
    assert reload(tenant).client_certificate_expires_at > timezone.now()


def test_the_key_survives_a_rotation_of_the_encryption_keys(tenant, tls_receiver, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    # The installation so far sealed with `old` (the tenant's own signing keys included).
    settings.CALLBACKS_ENCRYPTION_KEYS = [old, sealing.derived_key(settings.SECRET_KEY).decode()]
    call_command("reseal_secrets", stdout=io.StringIO())
    settings.CALLBACKS_ENCRYPTION_KEYS = [old]
    client_ca = trustme.CA()
    receiver = tls_receiver(client_ca=client_ca)
    give_certificate(tenant, client_ca)

    settings.CALLBACKS_ENCRYPTION_KEYS = [new, old]  # every process opens both while it runs
    call_command("reseal_secrets", stdout=io.StringIO())
    settings.CALLBACKS_ENCRYPTION_KEYS = [new]  # the old key dropped

    task = make_task(tenant=tenant, url=receiver.url())
    task.tenant = reload(tenant)
    assert send_attempt(task, attempt=1).outcome == Outcome.SUCCESS


def test_a_key_no_configured_key_opens_holds_its_tenant_back_and_no_other(tenant, tls_receiver, settings):
    old = Fernet.generate_key().decode()
    # The tenants' signing keys stay sealed with the key derived from SECRET_KEY, which stays configured.
    derived = sealing.derived_key(settings.SECRET_KEY).decode()
    settings.CALLBACKS_ENCRYPTION_KEYS = [old, derived]
    receiver = tls_receiver()
    give_certificate(tenant, trustme.CA())
    other = tenant_create(name="other").tenant
    # The key that sealed the client key removed too soon.
    settings.CALLBACKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), derived]

    mine = make_task(tenant=tenant, url=receiver.url())
    theirs = make_task(tenant=other, url=receiver.url())
    deliver(lambda t: send_attempt(t, attempt=t.attempts))  # both tenants' rows in one load

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.SUCCEEDED
    assert mine.status == TaskStatus.RETRYING
    error = TaskExecution.objects.get(task=mine).error
    assert error.startswith("the tenant's client key cannot be opened: no key in CALLBACKS_ENCRYPTION_KEYS")
    assert len(receiver.received) == 1
