"""A tenant's TLS material: what a valid client certificate, its key and a CA bundle are.

The client certificate is PEM: the certificate first, optionally followed by the intermediates
the receiver needs to build the chain; the key is a PEM private key without a passphrase (the
service must load it unattended), matching the certificate. CA certificates are one or more PEM
certificates, each a CA. Anything else is refused with the reason, before anything is stored.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from callbacks.errors import ApplicationError

# A certificate expiring within this is reported (/readyz, a metric) so it is replaced in time.
EXPIRY_WARNING = timedelta(days=14)
MAX_PEM_CHARS = 64 * 1024
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


@dataclass(frozen=True)
class ClientCertificate:
    certificate: str  # PEM, normalised
    key: str  # PEM
    expires_at: datetime  # aware UTC
    subject: str


def clean_client_certificate(certificate: str, key: str, *, now: datetime | None = None) -> ClientCertificate:
    """The certificate and key, checked; ApplicationError naming the field and the reason."""
    certificate, key = (certificate or "").strip(), (key or "").strip()
    if not certificate:
        raise _invalid("client_certificate", "a PEM certificate is required")
    if not key:
        raise _invalid("client_key", "the certificate's PEM private key is required")
    chain = _certificates("client_certificate", certificate)
    leaf = chain[0]
    expires_at = leaf.not_valid_after_utc
    if expires_at <= (now or datetime.now(UTC)):
        raise _invalid("client_certificate", f"the certificate expired on {expires_at:%Y-%m-%d %H:%M} UTC")
    if len(key) > MAX_PEM_CHARS:
        raise _invalid("client_key", f"longer than {MAX_PEM_CHARS} characters")
    try:
        private_key = serialization.load_pem_private_key(key.encode(), password=None)
    except TypeError:
        raise _invalid("client_key", "the key is encrypted with a passphrase; give it unencrypted") from None
    except (ValueError, UnicodeError) as exc:
        raise _invalid("client_key", f"not a PEM private key ({_first_line(exc)})") from None
    if not isinstance(private_key, _SIGNING_KEYS):
        raise _invalid("client_key", "not a key TLS signs with (RSA, EC, Ed25519 or Ed448)")
    if _public_bytes(private_key.public_key()) != _public_bytes(leaf.public_key()):
        raise _invalid("client_key", "the key does not belong to the certificate")
    return ClientCertificate(
        certificate=_pem(chain),
        key=key + "\n",
        expires_at=expires_at,
        subject=leaf.subject.rfc4514_string(),
    )


def clean_ca_certificates(text: str) -> str:
    """One or more PEM CA certificates, normalised; "" for none."""
    text = (text or "").strip()
    if not text:
        return ""
    chain = _certificates("ca_certificates", text)
    for cert in chain:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise _invalid(
                "ca_certificates",
                f"{cert.subject.rfc4514_string()} is not a CA certificate (basicConstraints CA)",
            )
    return _pem(chain)


def certificate_summaries(pem: str) -> list[dict]:
    """What may be shown about stored certificates, each: subject, issuer, expiry, fingerprint."""
    return [
        {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "expires_at": cert.not_valid_after_utc,
            "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        }
        for cert in x509.load_pem_x509_certificates(pem.encode())
    ]


def expiring_soon(expires_at: datetime | None, *, now: datetime | None = None) -> bool:
    return expires_at is not None and expires_at - (now or datetime.now(UTC)) <= EXPIRY_WARNING


def _certificates(field: str, text: str) -> list[x509.Certificate]:
    if len(text) > MAX_PEM_CHARS:
        raise _invalid(field, f"longer than {MAX_PEM_CHARS} characters")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _invalid(field, "not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        return x509.load_pem_x509_certificates(text.encode())
    except (ValueError, UnicodeError) as exc:
        raise _invalid(field, f"not a valid PEM certificate ({_first_line(exc)})") from None


def _pem(chain: list[x509.Certificate]) -> str:
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in chain)


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _invalid(field: str, reason: str) -> ApplicationError:
    return ApplicationError(f"{field}: {reason}", fields={field: [reason]})
