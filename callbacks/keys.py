"""API keys and signing secrets: how they look, how they are generated and stored."""

import base64
import hashlib
import secrets

API_KEY_PREFIX = "tc_"  # lets secret scanners recognise a leaked key
SIGNING_SECRET_PREFIX = "whsec_"  # Standard Webhooks


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_signing_secret() -> str:
    # Standard Webhooks: whsec_ + base64 of 24 to 64 random bytes.
    return SIGNING_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
