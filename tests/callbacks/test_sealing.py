"""Secrets sealed at rest: what one key sealed, a list holding that key opens; rotation re-seals."""

import pytest
from cryptography.fernet import Fernet

from callbacks import sealing
from callbacks.checks import check_encryption_keys
from taskcenter.env import ConfigError, env_fernet_keys

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def test_a_sealed_value_hides_the_plain_text_and_opens_again(settings):
    settings.CALLBACKS_ENCRYPTION_KEYS = [OLD]
    sealed = sealing.seal("-----BEGIN PRIVATE KEY----- abc")
    assert sealed.startswith(sealing.SEALED_PREFIX)
    assert "abc" not in sealed and "PRIVATE" not in sealed
    assert sealing.unseal(sealed) == "-----BEGIN PRIVATE KEY----- abc"


def test_rotation_opens_old_values_and_reseals_them_with_the_first_key(settings):
    settings.CALLBACKS_ENCRYPTION_KEYS = [OLD]
    sealed_by_old = sealing.seal("secret")

    settings.CALLBACKS_ENCRYPTION_KEYS = [NEW, OLD]
    assert sealing.unseal(sealed_by_old) == "secret"
    resealed = sealing.reseal(sealed_by_old)

    settings.CALLBACKS_ENCRYPTION_KEYS = [NEW]
    assert sealing.unseal(resealed) == "secret"
    with pytest.raises(sealing.SealError, match="CALLBACKS_ENCRYPTION_KEYS"):
        sealing.unseal(sealed_by_old)


def test_without_configured_keys_the_key_comes_from_secret_key(settings):
    settings.CALLBACKS_ENCRYPTION_KEYS = []
    sealed = sealing.seal("secret")
    settings.CALLBACKS_ENCRYPTION_KEYS = [sealing.derived_key(settings.SECRET_KEY).decode()]
    assert sealing.unseal(sealed) == "secret"
    settings.SECRET_KEY = "another" * 10
    settings.CALLBACKS_ENCRYPTION_KEYS = []
    with pytest.raises(sealing.SealError):
        sealing.unseal(sealed)


def test_a_plain_value_is_not_taken_for_a_sealed_one(settings):
    with pytest.raises(sealing.SealError):
        sealing.unseal("whsec_plain")


def test_the_environment_refuses_a_key_that_is_not_a_fernet_key(monkeypatch):
    monkeypatch.setenv("CALLBACKS_ENCRYPTION_KEYS", f"{NEW}, not-a-key")
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key"):
        env_fernet_keys("CALLBACKS_ENCRYPTION_KEYS")
    monkeypatch.setenv("CALLBACKS_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    assert env_fernet_keys("CALLBACKS_ENCRYPTION_KEYS") == [NEW, OLD]


def test_deploy_check_warns_without_keys_of_their_own(settings):
    settings.CALLBACKS_ENCRYPTION_KEYS = []
    assert [m.id for m in check_encryption_keys(None)] == ["callbacks.W002"]
    settings.CALLBACKS_ENCRYPTION_KEYS = [NEW]
    assert check_encryption_keys(None) == []


@pytest.mark.django_db
def test_reseal_secrets_seals_every_stored_secret_again_and_names_what_no_key_opens(settings):
    import io

    from django.core.management import CommandError, call_command
    from django.db import connection

    from callbacks.models import Tenant
    from callbacks.services.tenants import tenant_create

    settings.CALLBACKS_ENCRYPTION_KEYS = [OLD]
    kept = tenant_create(name="kept").tenant
    lost_key = Fernet.generate_key().decode()
    settings.CALLBACKS_ENCRYPTION_KEYS = [lost_key]
    lost = tenant_create(name="lost").tenant

    settings.CALLBACKS_ENCRYPTION_KEYS = [NEW, OLD]
    private_key = Tenant.objects.get(pk=kept.pk).signing_private_key
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 value"):
        call_command("reseal_secrets", stdout=io.StringIO(), stderr=err)
    assert f"callbacks.Tenant {lost.pk} signing_private_key" in err.getvalue()

    settings.CALLBACKS_ENCRYPTION_KEYS = [NEW]  # the old key dropped: what it sealed was sealed again
    assert Tenant.objects.get(pk=kept.pk).signing_private_key == private_key
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_private_key FROM callbacks_tenant WHERE id = %s",
            [Tenant._meta.pk.get_db_prep_value(lost.pk, connection)],
        )
        (untouched,) = cursor.fetchone()
    settings.CALLBACKS_ENCRYPTION_KEYS = [lost_key]
    assert sealing.unseal(untouched)  # left as it was, still opened by the key that sealed it
