"""Secrets kept encrypted at rest: private keys the service holds for its tenants.

A sealed value is a Fernet token (AES-128-CBC + HMAC-SHA256, from `cryptography`). The keys come
from ``CALLBACKS_ENCRYPTION_KEYS``: a comma-separated list of Fernet keys, the first seals, every
one opens. Rotating without downtime is therefore: put the new key first and keep the old one after
it (every process can open both), run ``manage.py reseal_secrets`` (every sealed value is sealed
again with the new key), then drop the old key. Without the variable the key is derived from
SECRET_KEY, which keeps the embedded set-up working with nothing to configure; production sets it
(``check --deploy`` says so).
"""

import base64
import hashlib
from functools import cache

from django.conf import settings
from django.db import models

SEALED_PREFIX = "sealed:"


class SealError(Exception):
    """A sealed value that none of the configured keys opens."""


def derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(("taskcenter-sealing:" + secret_key).encode()).digest()
    return base64.urlsafe_b64encode(digest)


@cache
def _fernet(keys: tuple[str, ...]):
    # Imported on first use: most processes never open a sealed value, and the library costs
    # each of them megabytes.
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key.encode()) for key in keys])


def _keys() -> tuple[str, ...]:
    configured = tuple(settings.CALLBACKS_ENCRYPTION_KEYS)
    return configured or (derived_key(settings.SECRET_KEY).decode(),)


def seal(plain: str) -> str:
    return SEALED_PREFIX + _fernet(_keys()).encrypt(plain.encode()).decode()


def unseal(sealed: str) -> str:
    if not sealed.startswith(SEALED_PREFIX):
        raise SealError("not a sealed value")
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(_keys()).decrypt(sealed[len(SEALED_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SealError(
            "no key in CALLBACKS_ENCRYPTION_KEYS opens this value (was the key that sealed it removed?)"
        ) from None


def reseal(sealed: str) -> str:
    """The same value sealed with the first key (rotation)."""
    from cryptography.fernet import InvalidToken

    if not sealed.startswith(SEALED_PREFIX):
        raise SealError("not a sealed value")
    try:
        return SEALED_PREFIX + _fernet(_keys()).rotate(sealed[len(SEALED_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SealError("no key in CALLBACKS_ENCRYPTION_KEYS opens this value") from None


class SealedTextField(models.TextField):
    """A text column holding its value sealed; Python sees the plain value.

    Empty stays empty (no secret set), so "is one set?" needs no decryption.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return unseal(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return seal(value)


def sealed_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) holding sealed values, for `reseal_secrets`."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, SealedTextField)
    ]
