"""What a receiver does to verify a v1a (ed25519) signature, with PyNaCl (libsodium): a verifier
independent of the `cryptography` (OpenSSL) code that signs."""

import base64

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


def v1a_signatures(received) -> list[bytes]:
    """The signatures of a received request's webhook-signature header, all of them v1a."""
    parts = received.headers["webhook-signature"].split(" ")
    assert all(part.startswith("v1a,") for part in parts), parts
    return [base64.b64decode(part.split(",", 1)[1]) for part in parts]


def verifies(public_key: str, received, signature: bytes) -> bool:
    """The public key's raw bytes (whpk_ + base64), the signed content rebuilt from the headers and
    the exact body received."""
    assert public_key.startswith("whpk_")
    verify_key = VerifyKey(base64.b64decode(public_key.removeprefix("whpk_")))
    content = (
        f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    )
    try:
        verify_key.verify(content, signature)
    except BadSignatureError:
        return False
    return True
