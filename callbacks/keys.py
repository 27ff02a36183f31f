"""API keys and signing keys: how they look, how they are generated and stored, which ones sign.

cryptography is imported where a key pair is made or used, not with this module: the API key checks
and the dispatcher need this module, not ed25519 (its bindings are several MB in every process).
"""

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from callbacks.domain.vocabulary import SigningScheme

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

API_KEY_PREFIX = "tc_"  # lets secret scanners recognise a leaked key
SIGNING_SECRET_PREFIX = "whsec_"  # Standard Webhooks: a symmetric (v1) secret
SIGNING_PRIVATE_KEY_PREFIX = "whsk_"  # Standard Webhooks: an asymmetric (v1a) secret key, never shown
SIGNING_PUBLIC_KEY_PREFIX = "whpk_"  # Standard Webhooks: the public key receivers verify v1a with


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_signing_secret() -> str:
    # Standard Webhooks: whsec_ + base64 of 24 to 64 random bytes.
    return SIGNING_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_signing_private_key() -> str:
    """An ed25519 private key: whsk_ + base64 of its raw 32 bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return SIGNING_PRIVATE_KEY_PREFIX + base64.b64encode(raw).decode()


@lru_cache(maxsize=1024)
def ed25519_private_key(private_key: str) -> "Ed25519PrivateKey":
    """The key object of a whsk_ text; cached, since every attempt of a tenant's callbacks signs with it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = base64.b64decode(private_key.removeprefix(SIGNING_PRIVATE_KEY_PREFIX))
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_of(private_key: str) -> str:
    """What a receiver verifies v1a signatures with: whpk_ + base64 of the raw 32-byte public key."""
    if not private_key:
        return ""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = ed25519_private_key(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SIGNING_PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class SchemeFields:
    """The tenant's columns holding one scheme's keys: the current one, the previous one and until when
    the previous one signs too."""

    current: str
    previous: str
    previous_until: str
    new: object  # () -> a new key of the scheme


SCHEME_FIELDS = {
    SigningScheme.V1: SchemeFields(
        "signing_secret", "previous_signing_secret", "previous_signing_secret_until", new_signing_secret
    ),
    SigningScheme.V1A: SchemeFields(
        "signing_private_key",
        "previous_signing_private_key",
        "previous_signing_key_until",
        new_signing_private_key,
    ),
}


def previous_signs(tenant, scheme: str, now: datetime) -> bool:
    """Whether the scheme's previous key still signs: it is set and its overlap has not ended."""
    fields = SCHEME_FIELDS[scheme]
    until = getattr(tenant, fields.previous_until)
    return bool(getattr(tenant, fields.previous)) and until is not None and until > now


def signing_keys(tenant, now: datetime) -> tuple[str, list[str]]:
    """(scheme, keys) that sign the tenant's callbacks now: the chosen scheme's current key, then its
    previous one while the rotation's overlap lasts. No current key: nothing signs."""
    scheme = tenant.signing_scheme or SigningScheme.V1
    fields = SCHEME_FIELDS[scheme]
    current = getattr(tenant, fields.current)
    if not current:
        return scheme, []
    if previous_signs(tenant, scheme, now):
        return scheme, [current, getattr(tenant, fields.previous)]
    return scheme, [current]
