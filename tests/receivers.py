"""A real HTTP server on 127.0.0.1 standing in for a callback receiver.

Tests script its answers per request (status, headers, body, delay, trickle, reset, hang,
huge bodies) and read back what it received, byte for byte, with the time of arrival.
It also counts requests in flight, so limits can be checked from the receiver's side.

`SilentListener` is the opposite: a socket nobody answers on, which proves that nothing reached it.
"""

import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict  # lower-cased names
    body: bytes
    at: float  # time.time() when the request was fully read
    seq: int  # 1, 2, ... in order of arrival


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # seconds between single bytes of the body (a slow sender)
    reset: bool = False  # close the connection with RST instead of answering
    hang: bool = False  # never answer (until the server stops)
    body_size: int = 0  # when set, send this many bytes of filler instead of `body`


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog; must be set before the socket listens. The default of 5 makes
    # bursts of concurrent connects fail with resets that no real receiver would send.
    request_queue_size = 1024


class Receiver:
    """Use as a context manager; `respond` may be a Reply or a function of Received -> Reply."""

    def __init__(self, respond=None, host="127.0.0.1"):
        self.respond = respond or Reply()
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server = _Server((host, 0), self._handler_class())
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least `count` requests have arrived; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"receiver got {len(self.received)} requests, expected {count}")
                self._changed.wait(remaining)
            return list(self.received)

    def _record(self, handler, body) -> Received:
        with self._changed:
            item = Received(
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                at=time.time(),
                seq=len(self.received) + 1,
            )
            self.received.append(item)
            self._changed.notify_all()
            return item

    def _reply_for(self, item: Received) -> Reply:
        respond = self.respond
        return respond(item) if callable(respond) else respond

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                item = receiver._record(self, body)
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    self._answer(receiver._reply_for(item))
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def _answer(self, reply: Reply):
                if reply.hang:
                    receiver._stopping.wait()
                    return
                if reply.delay:
                    receiver._stopping.wait(reply.delay)
                if reply.reset:
                    # SO_LINGER with a zero timeout makes close() send RST.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                body = b"x" * reply.body_size if reply.body_size else reply.body
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if reply.trickle:
                        for i in range(len(body)):
                            if receiver._stopping.wait(reply.trickle):
                                return
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return Handler


class SilentListener:
    """A listening TCP socket nobody accepts on: any connection that reached it waits in the
    backlog, so `connections()` proves whether anything got through."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self):
        self.sock.close()
