"""A real TLS receiver on 127.0.0.1 speaking HTTP/2 (and HTTP/1.1 if told to), made with hypercorn,
with certificates from a test CA made in the test (trustme).

It records, per request, the protocol it was reached over (`http_version`: "2" or "1.1"), the
headers exactly as they came (names as on the wire) and the body byte for byte; answers are
scripted with the same `Reply` as tests.receivers.Receiver (status, headers, body, delay,
trickle, body_size, hang). It can demand a client certificate issued by a given CA.
"""

import asyncio
import logging
import select
import socket
import ssl
import threading
from dataclasses import dataclass

from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.receivers import Receiver, Reply


@dataclass
class Received:
    http_version: str
    method: str
    path: str
    headers: list  # (name, value) as bytes, in order, as received
    body: bytes


class TlsReceiver:
    """Use as a context manager. `alpn`: what the server offers; `client_ca`: a trustme CA whose
    certificates the server demands from clients (None: it asks for none)."""

    def __init__(
        self, server_cert, *, respond=None, alpn=("h2", "http/1.1"), client_ca=None, max_streams=100, tmp_path
    ):
        self.respond = respond or Reply()
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._changed = threading.Condition()
        cert_path = tmp_path / f"server-{id(self)}.pem"
        server_cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
        self._sock = socket.socket()  # handed to hypercorn by its descriptor; it closes it
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{self._sock.fileno()}"]
        config.certfile = config.keyfile = str(cert_path)
        config.alpn_protocols = list(alpn)
        config.accesslog = None
        config.errorlog = logging.getLogger("tests.tls_receiver")
        config.graceful_timeout = 0.1
        config.h2_max_concurrent_streams = max_streams
        self._terminator = None
        if client_ca is not None:
            # asyncio closes a refused TLS 1.3 connection without its alert; real servers send
            # "certificate required". TLS is ended in front of hypercorn by Python's ssl then.
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert_path))
            context.set_alpn_protocols(list(alpn))
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
            self._terminator = _TlsTerminator(self._sock, context)
            self._sock = self._terminator.backend
            config.bind = [f"fd://{self._sock.fileno()}"]
            config.certfile = config.keyfile = None
        self._config = config
        self._loop = asyncio.new_event_loop()
        # Connections the tests cut, and tasks left when the loop is stopped under a kept-alive
        # connection, are expected here: not errors to report.
        self._loop.set_exception_handler(lambda loop, context: None)
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def refused(self) -> list[str]:
        """Why the TLS front refused connections (with a client certificate demanded)."""
        return self._terminator.refused if self._terminator else []

    def url(self, host="127.0.0.1", path="/hook") -> str:
        return f"https://{host}:{self.port}{path}"

    def __enter__(self):
        started = threading.Event()

        async def main():
            self._stop = asyncio.Event()
            started.set()
            await serve(self._app, self._config, shutdown_trigger=self._stop.wait)

        self._main = main
        if self._terminator is not None:
            self._terminator.start()
        self._thread.start()
        started.wait(10)
        return self

    def _run(self):
        try:
            self._loop.run_until_complete(self._main())
        except (ssl.SSLError, RuntimeError):
            pass  # a client's connection cut at shutdown, or the loop stopped under it

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(2)
        if self._thread.is_alive():
            # A client's keep-alive connection holds hypercorn's graceful stop: stop the loop,
            # then end what it left (the server, its lifespan) by cancelling it on that loop,
            # or the garbage collector would close those coroutines later, on a closed loop,
            # and print their errors into whichever test runs then.
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.run_until_complete(_cancelled(asyncio.all_tasks(self._loop)))
            self._loop.close()
        self._sock.detach()  # hypercorn closed it
        if self._terminator is not None:
            self._terminator.stop()

    wait_for = Receiver.wait_for  # the same `received` list under the same `_changed` condition

    async def _app(self, scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while True:
                    kind = (await receive())["type"]
                    await send({"type": kind + ".complete"})  # lifespan.startup / lifespan.shutdown
                    if kind == "lifespan.shutdown":
                        return
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        item = Received(
            http_version=scope["http_version"],
            method=scope["method"],
            path=scope["raw_path"].decode()
            + (("?" + scope["query_string"].decode()) if scope["query_string"] else ""),
            headers=list(scope["headers"]),
            body=body,
        )
        with self._changed:
            self.received.append(item)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
        try:
            reply = self.respond(item) if callable(self.respond) else self.respond
            await self._answer(reply, send)
        finally:
            with self._changed:
                self.in_flight -= 1

    async def _answer(self, reply: Reply, send):
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = b"x" * reply.body_size if reply.body_size else reply.body
        headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers.items()]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.trickle:
            for i in range(len(body)):
                await asyncio.sleep(reply.trickle)
                await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": body})


async def _cancelled(tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def header(item: Received, name: str) -> str | None:
    for key, value in item.headers:
        if key.decode("latin-1") == name:
            return value.decode("latin-1")
    return None


class _TlsTerminator:
    """Ends TLS with Python's ssl (blocking: a refused handshake sends its alert) and pipes the
    clear bytes to hypercorn, which tells HTTP/2 from HTTP/1.1 by the connection preface."""

    def __init__(self, listener: socket.socket, context: ssl.SSLContext):
        self._listener = listener
        self._context = context
        self.backend = socket.socket()
        self.backend.bind(("127.0.0.1", 0))
        self.backend.listen(128)
        self.refused: list[str] = []
        self._stopping = threading.Event()

    def start(self):
        self._listener.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self._stopping.set()

    def _accept(self):
        backend_address = self.backend.getsockname()
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, backend_address), daemon=True).start()
        self._listener.close()

    def _serve(self, client, backend_address):
        client.settimeout(10)
        tls = self._context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.refused.append(str(exc))
            _lingering_close(socket.socket(fileno=tls.detach()))
            return
        _relay(tls, socket.create_connection(backend_address))


def _relay(tls, backend):
    """Both directions in one thread: an SSL socket must not be read and written at once."""
    try:
        while True:
            readable = [tls] if tls.pending() else select.select([tls, backend], [], [], 10)[0]
            if not readable:
                return
            for source, target in ((tls, backend), (backend, tls)):
                if source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (tls, backend):
            try:
                sock.close()
            except OSError:
                pass


def _lingering_close(sock):
    """Close as nginx does: stop writing, read what the client already sent, then close, so the
    alert just sent is not lost to a reset."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()
