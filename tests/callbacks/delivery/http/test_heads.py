"""Response heads read within bounds (callbacks/delivery/http/heads.py), against a real server on 127.0.0.1
that sends whatever head it is given."""

import socket
import threading

import pytest

from tests.callbacks.delivery.http.sending import forget_pools, send


class RawHeadServer:
    """Answers each request with `head` (bytes, the status line and headers, no blank line), then a
    Content-Length and a 2-byte body, keeping connections alive; counts the connections."""

    def __init__(self, head: bytes):
        self.head = head
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        forget_pools()  # closes a kept-alive connection the server waits on
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.sock.close()
        self._thread.join(5)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    while conn.recv(65536):  # kept alive until the client closes
                        conn.sendall(self.head + b"\r\nContent-Length: 2\r\n\r\nok")
                except OSError:
                    pass  # the client stopped reading the head and closed


def many_headers(count: int, size: int) -> bytes:
    lines = [f"X-Filler-{index}: {'a' * size}".encode() for index in range(count)]
    return b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(lines)


@pytest.fixture(autouse=True)
def fresh_pools():
    forget_pools()


def test_a_head_within_the_bounds_is_read_whole(callbacks_settings):
    callbacks_settings(RESPONSE_HEADERS_LIMIT=32 * 1024)
    with RawHeadServer(many_headers(20, 100)) as server:
        raw = send(server.url)
    assert raw.status_code == 200
    assert raw.headers_cut is False
    assert raw.headers["X-Filler-19"] == "a" * 100
    assert raw.body == b"ok"


def test_a_head_past_the_byte_limit_is_cut_and_the_status_kept(callbacks_settings):
    """60 headers of 60 KiB (3.6 MB of head, under http.client's own 100 lines of 64 KiB) used to be
    read and stored whole."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=8 * 1024)
    with RawHeadServer(many_headers(60, 60 * 1024)) as server:
        raw = send(server.url, total_timeout=10)
    assert raw.status_code == 200
    assert raw.headers_cut is True
    assert sum(len(name) + len(value) for name, value in raw.headers.items()) <= 8 * 1024
    assert raw.body == b""  # not read: the connection is closed instead


@pytest.mark.parametrize("framing", [b"Content-Length: 2", b"Transfer-Encoding: chunked"])
def test_a_body_framing_read_before_the_cut_is_not_followed(callbacks_settings, framing):
    """The body is not read after a cut: neither waited for by its length nor parsed out of the rest of
    the head as chunks."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=2048)
    head = b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + many_headers(20, 500).split(b"\r\n", 1)[1]
    with RawHeadServer(head) as server:
        raw = send(server.url)
    assert (raw.status_code, raw.headers_cut, raw.body) == (200, True, b"")


def test_a_head_of_too_many_lines_is_cut_and_the_status_kept(callbacks_settings):
    """More than http.client's 100 header lines used to fail the attempt as a connection error, which
    a retry sent again although the receiver had answered."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=1024 * 1024)
    with RawHeadServer(many_headers(150, 10)) as server:
        raw = send(server.url)
    assert raw.status_code == 200
    assert raw.headers_cut is True
    assert len(raw.headers) <= 100


def test_a_cut_connection_is_not_reused(callbacks_settings):
    """The rest of a cut head is still on its connection: reused, it would be read as the next answer."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=1024, KEEPALIVE_IDLE_SECONDS=3600)
    with RawHeadServer(many_headers(10, 500)) as server:
        send(server.url)
        second = send(server.url)
    assert second.status_code == 200
    assert second.headers_cut is True
    assert server.connections == 2
