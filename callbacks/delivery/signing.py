"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is '{id}.{timestamp}.' + body. Two schemes, the tenant's choice:
- v1: "v1,<base64 HMAC-SHA256>", keyed with the base64-decoded part of the tenant's "whsec_" secret;
- v1a: "v1a,<base64 ed25519 signature>", made with the tenant's private key, which never leaves the
  service; receivers verify with its public key ("whpk_" + base64 of the raw 32 bytes).
During a rotation the current and the previous key both sign, space-separated, so a receiver that
knows either one verifies.
"""

import base64
import hashlib
import hmac

from callbacks.domain.vocabulary import SigningScheme
from callbacks.keys import SIGNING_SECRET_PREFIX, ed25519_private_key

SECRET_PREFIX = SIGNING_SECRET_PREFIX


def secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    # Tolerate unpadded base64, as the reference implementations do.
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def signed_content(*, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = signed_content(msg_id=msg_id, timestamp=timestamp, body=body)
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_v1a(*, private_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = signed_content(msg_id=msg_id, timestamp=timestamp, body=body)
    signature = ed25519_private_key(private_key).sign(content)
    return "v1a," + base64.b64encode(signature).decode("ascii")


def signature_header(
    secrets: list[str], *, msg_id: str, timestamp: int, body: bytes, scheme: str = SigningScheme.V1
) -> str:
    """The webhook-signature value: one signature of `scheme` per non-empty key, current first."""
    if scheme == SigningScheme.V1A:
        return " ".join(
            sign_v1a(private_key=key, msg_id=msg_id, timestamp=timestamp, body=body) for key in secrets if key
        )
    return " ".join(
        sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets if secret
    )
