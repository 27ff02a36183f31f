"""PEM material made in the test (trustme): client certificates with their keys, CA certificates."""

import trustme


def client_pem(ca: trustme.CA | None = None, **options) -> tuple[str, str]:
    """(certificate chain PEM, private key PEM) of a new client certificate from `ca`."""
    leaf = (ca or trustme.CA()).issue_cert("tenant.example", **options)
    return b"".join(
        blob.bytes() for blob in leaf.cert_chain_pems
    ).decode(), leaf.private_key_pem.bytes().decode()


def ca_pem(ca: trustme.CA | None = None) -> str:
    return (ca or trustme.CA()).cert_pem.bytes().decode()
