"""Fixtures for the delivery engine's HTTP side: guard settings, a self-signed HTTPS receiver, and a
safety net that keeps test traffic on loopback."""

import ipaddress
import socket
import ssl
import subprocess
from contextlib import ExitStack

import pytest
import trustme

from tests.callbacks.delivery.http.sending import forget_pools
from tests.receivers import Receiver
from tests.tls_receivers import TlsReceiver


@pytest.fixture
def callbacks_settings(settings):
    """Change settings.CALLBACKS keys for one test: callbacks_settings(KEY=value, ...)."""

    def change(**values):
        settings.CALLBACKS = {**settings.CALLBACKS, **values}

    return change


@pytest.fixture
def guard_strict(callbacks_settings):
    """The SSRF guard as in production: nothing non-public is exempt, loopback included."""
    callbacks_settings(ALLOWED_NETWORKS=[], ALLOW_PRIVATE_NETWORKS=False)


@pytest.fixture
def loopback_only_traffic(monkeypatch):
    """Fails any connect outside 127.0.0.0/8 and ::1, so a broken guard cannot leak test traffic."""
    real_connect = socket.socket.connect

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = ipaddress.ip_address(address[0].split("%")[0])
            host = getattr(host, "ipv4_mapped", None) or host
            if not host.is_loopback:
                raise AssertionError(f"test traffic to {address[0]} attempted")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_receiver(self_signed_cert):
    """A Receiver speaking HTTPS with the self-signed certificate."""
    cert, key = self_signed_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Receiver()
    # Handshakes happen in the handler threads, so a client that rejects the certificate
    # does not stall the accept loop.
    server._server.socket = context.wrap_socket(
        server._server.socket, server_side=True, do_handshake_on_connect=False
    )
    server._server.handle_error = lambda *args: None  # failed handshakes are expected here
    with server:
        yield server


@pytest.fixture(scope="session")
def test_ca():
    """A certificate authority made for the test run (trustme), and a server certificate from it."""
    ca = trustme.CA()
    return ca, ca.issue_cert("127.0.0.1", "localhost", "inward.test")


@pytest.fixture
def trusting_test_ca(test_ca, tmp_path, callbacks_settings):
    """CALLBACKS_CA_BUNDLE is the test CA: receivers with its certificates are trusted."""
    bundle = tmp_path / "test-ca.pem"
    test_ca[0].cert_pem.write_to_path(str(bundle))
    callbacks_settings(CA_BUNDLE=str(bundle))
    return bundle


@pytest.fixture
def tls_receiver(test_ca, tmp_path, trusting_test_ca):
    """Starts TlsReceivers (hypercorn, HTTP/2 and HTTP/1.1 over TLS): tls_receiver(respond=..., alpn=...)."""
    with ExitStack() as stack:

        def start(**options):
            return stack.enter_context(TlsReceiver(test_ca[1], tmp_path=tmp_path, **options))

        yield start
        forget_pools()  # our kept-alive connections would hold the receivers' graceful stop
