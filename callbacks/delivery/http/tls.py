"""TLS identities: what a tenant's connections trust and present.

An identity is the installation's trust (CALLBACKS_CA_BUNDLE, or certifi's CAs) plus, when the
tenant set them, its own CA certificates and its client certificate and key. Each identity has
its own connection pools (session.py): a connection verified against one tenant's CA, or
presenting one tenant's certificate, is never handed to another tenant's callback.

Python's ssl loads a certificate chain only from a file; the key is written to an anonymous
in-memory file (memfd) for the moment it is loaded, so the unsealed key never touches a disk.
Verification is always on: there is no way to turn it off here.
"""

import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass

from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context

from callbacks import conf


@dataclass(frozen=True)
class TlsIdentity:
    """A tenant's own TLS material, PEM text; `key` names it (its pools are keyed by it)."""

    key: str
    client_certificate: str = ""
    client_key: str = ""
    ca_certificates: str = ""


class UnusableIdentity(Exception):
    """The tenant's client key is stored but cannot be opened (the key that sealed it was removed
    from CALLBACKS_ENCRYPTION_KEYS): its callbacks wait rather than go out without it."""


def identity_of(tenant) -> TlsIdentity | None:
    """The tenant's identity, or None when it uses the installation's trust alone."""
    cert = getattr(tenant, "client_certificate", "") or ""
    ca = getattr(tenant, "ca_certificates", "") or ""
    if not cert and not ca:
        return None
    unopened = getattr(tenant, "unopened_secrets", {}).get("client_key")
    if cert and unopened:
        raise UnusableIdentity(f"the tenant's client key cannot be opened: {unopened}")
    client_key = tenant.client_key or ""
    # A new certificate, key or CA is a new identity, so replacing one never reuses a connection
    # made with the previous one; the digest keeps the key itself out of the pool's name.
    digest = hashlib.sha256("\0".join((cert, client_key, ca)).encode()).hexdigest()[:24]
    return TlsIdentity(
        key=f"{tenant.pk}:{digest}", client_certificate=cert, client_key=client_key, ca_certificates=ca
    )


def make_context(identity: TlsIdentity | None, *, alpn: list[str]) -> ssl.SSLContext:
    """A verifying client context for the identity, offering `alpn`."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.check_hostname = True
    bundle = conf.get("CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH  # certifi's, as requests trusts
    if os.path.isdir(bundle):
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    if identity is not None:
        if identity.ca_certificates:
            context.load_verify_locations(cadata=identity.ca_certificates)
        if identity.client_certificate:
            load_client_certificate(context, identity.client_certificate, identity.client_key)
    context.set_alpn_protocols(alpn)
    return context


def load_client_certificate(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """Load a PEM certificate (chain) and its key into `context`; ssl.SSLError if they do not fit."""
    with _memory_file(certificate + "\n" + key) as path:
        context.load_cert_chain(path)


class _memory_file:
    """A path to `text` that lives in memory where the system allows it (Linux memfd)."""

    def __init__(self, text: str):
        self._text = text.encode()
        self._fd = None
        self._path = None

    def __enter__(self) -> str:
        if hasattr(os, "memfd_create"):
            self._fd = os.memfd_create("tls-identity", os.MFD_CLOEXEC)
            os.write(self._fd, self._text)
            return f"/proc/self/fd/{self._fd}"
        fd, self._path = tempfile.mkstemp(prefix="tls-identity-")  # created mode 0600
        os.write(fd, self._text)
        os.close(fd)
        return self._path

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
        if self._path is not None:
            os.unlink(self._path)
