"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

webhook-signature is "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.' + body>", keyed with the
base64-decoded part of the tenant's "whsec_" secret. During a rotation the current and the
previous secret both sign, space-separated, so a receiver that knows either one verifies.
"""

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    # Tolerate unpadded base64, as the reference implementations do.
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: list[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: one v1 signature per non-empty secret, current first."""
    return " ".join(
        sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets if secret
    )
