"""Sign-in link tokens: a random secret, signed with the installation's SECRET_KEY.

The signature lets a made-up or altered token be refused before any query, and ties tokens to this
installation; the secret's digest (PortalLink.digest) makes a link expire and be revoked. Nothing
but the digest is stored: the token is shown once, when the link is made.
"""

import hashlib
import secrets

from django.core import signing

from callbacks.errors import ApplicationError

# A working day and a night by default; never more than a week, so a forgotten link dies by itself.
DEFAULT_HOURS = 24
MAX_HOURS = 7 * 24
_SIGNER = signing.Signer(salt="portal.link", sep=".")


def new_token() -> tuple[str, str]:
    """(token, digest): the token goes into the link, the digest into the database."""
    secret = secrets.token_urlsafe(32)
    return _SIGNER.sign(secret), digest_of(secret)


def token_digest(token: str) -> str | None:
    """The digest a token's secret has, or None when the token is not one this installation signed."""
    try:
        return digest_of(_SIGNER.unsign(token))
    except signing.BadSignature:
        return None


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_hours(hours) -> int:
    """How long a new link works, in whole hours, between 1 and MAX_HOURS."""
    if hours is None or hours == "":
        return DEFAULT_HOURS
    try:
        value = int(str(hours))
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_HOURS:
        raise ApplicationError(
            f"A link works between 1 and {MAX_HOURS} hours.",
            fields={"hours": [f"a whole number of hours from 1 to {MAX_HOURS}"]},
        )
    return value
