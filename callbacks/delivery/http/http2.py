"""HTTP/2 to receivers that offer it, negotiated through ALPN.

The first connection to an origin offers `h2` and `http/1.1`. A receiver that picks `h2` keeps that
connection, and every later attempt to the origin opens a stream on it: concurrent callbacks to one
origin share one connection, as many streams at once as the receiver allows, then a second
connection. A receiver that picks HTTP/1.1 (or answers no ALPN) is remembered as such and the
attempt goes on through the HTTP/1.1 pools (pools.py) at once; from then on its attempts go there
directly, with no probe.

Why not urllib3's own `urllib3.http2`: it patches urllib3 process-wide and offers only `h2` (an
HTTP/1.1-only receiver cannot be reached at all), carries one request per connection, and reads a
whole response into memory before returning it (no body cap, no deadline between chunks).

What holds for HTTP/1.1 holds here, by the same code where it can:
- the connection is opened by the SSRF guard (ssrf.GuardedHTTPSConnection._new_conn), which checks
  the address actually connected to, and retried in its connection phase only (ConnectPhaseRetry);
- the attempt's deadline watch is given the stream, not the shared socket: at the deadline the
  watchdog cuts that stream alone (reset), the others on the connection go on;
- the response is read as a urllib3 HTTPResponse streaming from the stream, so the body cap, the
  deadline check between chunks and content decoding are attempt.py's, unchanged; flow control
  grants the receiver only what has been read, so an unread body is never buffered;
- no redirect is followed (a 3xx is returned like any answer), and headers HTTP/2 forbids
  (hop-by-hop: Connection, Keep-Alive, Transfer-Encoding, Upgrade...) are never sent.

A receiver retiring the connection (GOAWAY) sends later attempts to a new one; a stream it says it did
not process (above the GOAWAY's last stream, or reset with REFUSED_STREAM) is sent again on another
connection rather than failed.

Threads: a reader thread per connection receives frames and hands them to the streams; every
thread touches the h2 state machine and the socket only under the connection's lock, so the TLS
socket is never read and written at once. The socket is non-blocking after the handshake.
"""

import collections
import select
import ssl
import threading
import time
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.response import HTTPResponse

from callbacks import conf
from callbacks.delivery.http.deadline import current_watch, process_watchdog
from callbacks.delivery.ssrf import GuardedHTTPSConnection

# Never sent over HTTP/2 (connection-specific: RFC 9113 section 8.2.2); Host becomes :authority.
CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host"}
)
# What a receiver may send ahead of our reading it, per stream and per connection.
RECEIVE_WINDOW = 256 * 1024
# Largest block of response headers accepted, as http.client's 64 KiB line limit does for HTTP/1.1.
MAX_HEADER_LIST_SIZE = 64 * 1024
# Waits re-check their stream this often: a deadline brought forward (a worker stopping) is
# noticed within it.
WAIT_STEP = 0.25
# A write the receiver does not take within this fails the connection (its frames are half sent).
WRITE_STALL_SECONDS = 10.0
# A stream the receiver refused unprocessed is sent again on another connection this many times:
# a receiver retiring its connections (GOAWAY after so many requests) costs the attempt nothing.
REFUSED_STREAM_RETRIES = 2
# An origin found to speak HTTP/1.1 only is offered HTTP/2 again after this long (it may have
# been upgraded since); an HTTP/2 origin is re-learnt whenever a new connection is opened to it.
HTTP11_MEMORY_SECONDS = 3600.0


class StreamError(ProtocolError):
    """A stream that ended without a whole answer (reset, connection lost, cut at the deadline).

    A urllib3 ProtocolError, so requests reports it as a connection error, the way a lost
    HTTP/1.1 connection is reported.
    """

    def again(self) -> "StreamError":
        """The same error, new, for another stream of the failed connection to raise."""
        return type(self)(*self.args)


class TlsStreamError(StreamError):
    """The TLS layer failed the connection (a receiver refusing our client certificate alerts
    after the handshake, in TLS 1.3): reported as a TLS error, with OpenSSL's reason."""

    def __init__(self, reason: str):
        super().__init__(f"TLS error: {reason.replace('_', ' ').lower()}")
        self.reason = reason

    def again(self) -> "TlsStreamError":
        return TlsStreamError(self.reason)


class StreamRefused(StreamError):
    """The receiver said it did not process the stream: numbered above the last one its GOAWAY
    accepts, or reset with REFUSED_STREAM. Safe to send again, on another connection."""


class ConnectionFull(Exception):
    """Another attempt took the connection's last stream first: the caller picks another."""


class _Stream:
    """One request on a connection, and the file its response body is read from."""

    def __init__(self, connection: "Http2Connection"):
        self.connection = connection
        self.id: int | None = None
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque = collections.deque()  # (data, flow-controlled length)
        self.ended = False
        self.error: StreamError | None = None
        self.cut = False
        self.closed = False

    def shutdown(self, how=None) -> None:
        """The deadline watchdog cuts this stream (it holds the stream where it would hold a
        socket): only a flag, so the watchdog never waits for the connection's lock."""
        self.cut = True

    # --- the file urllib3's HTTPResponse reads ---------------------------------------------
    def read(self, amt: int | None = None) -> bytes:
        return self.connection.read(self, amt)

    def isclosed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.connection.close_stream(self)


class Http2Connection:
    """One TLS connection speaking HTTP/2, shared by the attempts to its origin."""

    def __init__(self, sock: ssl.SSLSocket, *, on_close):
        self._sock = sock
        self._on_close = on_close
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._streams: dict[int, _Stream] = {}
        self._closed = False
        self._failure: StreamError | None = None  # why the connection failed, for later requests
        self._goaway = False
        # Until the receiver's first SETTINGS arrive, h2 takes its stream limit for unbounded, and a
        # receiver enforcing a lower one from its first byte would end the connection over the excess.
        self._settings_received = False
        # Set when an attempt waited a whole connect timeout for those SETTINGS in vain: the
        # connection takes no more streams, so later attempts pass it at once instead of each waiting
        # as long again, in turn, behind the origin's opening lock.
        self._settings_overdue = False
        self.idle_since = time.monotonic()
        self._h2 = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._h2.initiate_connection()
        self._h2.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            }
        )
        self._h2.increment_flow_control_window(RECEIVE_WINDOW)
        sock.setblocking(False)
        with self._lock:
            self._flush(time.monotonic() + WRITE_STALL_SECONDS)
        self._reader = threading.Thread(target=self._read_loop, name="callbacks-h2-reader", daemon=True)
        self._reader.start()

    # --- state, for the pool ------------------------------------------------------------------
    def available(self, settings_timeout: float = 0.0) -> bool:
        """Whether the connection takes another stream now. A new connection is asked before the
        receiver said how many streams it allows: that is waited for, up to `settings_timeout`
        seconds, and a connection still without it counts as full."""
        with self._changed:
            if self._closed or self._goaway:
                return False
            if self._settings_overdue:
                if not self._streams:
                    self._close_locked("no SETTINGS from the receiver")
                return False
            if not self._streams and time.monotonic() - self.idle_since > conf.get("KEEPALIVE_IDLE_SECONDS"):
                # Idle too long: the receiver or a load balancer has probably dropped it.
                self._close_locked("idle")
                return False
            deadline = time.monotonic() + settings_timeout
            while not self._settings_received:
                remaining = deadline - time.monotonic()
                if self._closed or self._goaway:
                    return False
                if remaining <= 0:
                    # A receiver's first frame is its SETTINGS, sent with the handshake: one that has
                    # not sent them in the time a new connection may take to open is not going to.
                    self._settings_overdue = settings_timeout > 0
                    return False
                self._changed.wait(min(remaining, WAIT_STEP))  # the reader wakes it on every frame
            if self._closed or self._goaway:
                return False
            return self._h2.open_outbound_streams < self._h2.remote_settings.max_concurrent_streams

    def streams(self) -> int:
        return len(self._streams)

    # --- a request ----------------------------------------------------------------------------
    def request(self, *, method: str, authority: str, path: str, headers: list, body: bytes) -> _Stream:
        """Send the request on a new stream and wait for the response's headers."""
        stream = _Stream(self)
        watch = current_watch()
        if watch is not None:
            process_watchdog().attach(watch, stream)
        deadline = watch.deadline if watch is not None else time.monotonic() + WRITE_STALL_SECONDS
        with self._changed:
            if self._failure is not None:
                raise self._failure.again()
            if self._closed or self._goaway:
                raise StreamError("HTTP/2 connection closed before the request was sent")
            if self._h2.open_outbound_streams >= self._h2.remote_settings.max_concurrent_streams:
                raise ConnectionFull
            try:
                stream.id = self._h2.get_next_available_stream_id()
                self._streams[stream.id] = stream
                pseudo = [
                    (b":method", method.encode()),
                    (b":scheme", b"https"),
                    (b":authority", authority.encode()),
                ]
                self._h2.send_headers(
                    stream.id, [*pseudo, (b":path", path.encode()), *headers], end_stream=not body
                )
                self._flush(deadline)
                self._send_body(stream, body, deadline)
                while stream.status is None:
                    self._check(stream)
                    if stream.ended:
                        raise StreamError("stream ended without a response")
                    self._changed.wait(WAIT_STEP)
            except h2.exceptions.H2Error as exc:
                self._forget(stream)
                raise StreamError(f"HTTP/2 protocol error: {exc}") from exc
            except StreamError:
                self._cancel(stream)
                raise
        return stream

    def _send_body(self, stream: _Stream, body: bytes, deadline: float) -> None:
        view = memoryview(body)
        offset = 0
        while offset < len(body):
            self._check(stream)
            room = min(self._h2.local_flow_control_window(stream.id), self._h2.max_outbound_frame_size)
            if room <= 0:
                self._changed.wait(WAIT_STEP)  # a WINDOW_UPDATE from the receiver wakes it
                continue
            size = min(room, len(body) - offset)
            self._h2.send_data(
                stream.id, bytes(view[offset : offset + size]), end_stream=offset + size == len(body)
            )
            offset += size
            self._flush(deadline)

    def _check(self, stream: _Stream) -> None:
        if stream.cut:
            raise StreamError("stream cut at the attempt's deadline")
        if stream.error is not None:
            raise stream.error.again()

    def read(self, stream: _Stream, amt: int | None) -> bytes:
        with self._changed:
            while not stream.chunks:
                if stream.ended or stream.closed:
                    return b""
                self._check(stream)
                self._changed.wait(WAIT_STEP)
            if stream.cut:
                raise StreamError("stream cut at the attempt's deadline")
            parts, size, acknowledge = [], 0, 0
            while stream.chunks and (amt is None or size < amt):
                data, flow_length = stream.chunks.popleft()
                if amt is not None and size + len(data) > amt:
                    stream.chunks.appendleft((data[amt - size :], 0))
                    data = data[: amt - size]
                parts.append(data)
                size += len(data)
                acknowledge += flow_length
            if acknowledge and not self._closed:
                # Only what was read is granted back: a body nobody reads stays at the receiver.
                try:
                    self._h2.acknowledge_received_data(acknowledge, stream.id)
                except h2.exceptions.StreamClosedError:
                    pass
                self._flush(time.monotonic() + WRITE_STALL_SECONDS)
            return b"".join(parts)

    def close_stream(self, stream: _Stream) -> None:
        with self._changed:
            if stream.closed:
                return
            if not stream.ended:
                self._cancel(stream)  # left early (body cap, deadline): the receiver may stop sending
            else:
                self._forget(stream)

    def _cancel(self, stream: _Stream) -> None:
        if stream.id is not None and not self._closed and not stream.ended and stream.error is None:
            try:
                self._h2.reset_stream(stream.id, error_code=h2.errors.ErrorCodes.CANCEL)
                self._flush(time.monotonic() + WRITE_STALL_SECONDS)
            except (h2.exceptions.H2Error, StreamError):
                pass
        self._forget(stream)

    def _forget(self, stream: _Stream) -> None:
        stream.closed = True
        self._streams.pop(stream.id, None)
        if not self._streams:
            self.idle_since = time.monotonic()
            if self._goaway:
                self._close_locked("receiver sent GOAWAY")

    # --- the socket ---------------------------------------------------------------------------
    def _flush(self, deadline: float) -> None:
        """Write what h2 has to send (under the lock). A write that stalls past `deadline` leaves
        half a frame on the wire: the connection is failed."""
        view = memoryview(self._h2.data_to_send())
        try:
            while view:
                try:
                    sent = self._sock.send(view)
                    view = view[sent:]
                    continue
                except (ssl.SSLWantWriteError, BlockingIOError):
                    waiting = ([], [self._sock])
                except ssl.SSLWantReadError:
                    waiting = ([self._sock], [])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the receiver stopped reading")
                select.select(*waiting, [], min(remaining, WAIT_STEP))
        except (OSError, ValueError) as exc:
            error = _lost(exc, "while sending")
            self._fail_locked(error)
            raise error from exc

    def _read_loop(self) -> None:
        # Like the worker's HTTP threads, a reader reads settings from the cache alone: it must not
        # open a database connection of its own.
        conf.forbid_database_in_this_thread()
        while True:
            try:
                select.select([self._sock], [], [], WAIT_STEP * 4)
            except (OSError, ValueError):
                pass  # closed under us: the lock below says so
            with self._changed:
                if self._closed:
                    return
                try:
                    self._receive()
                except (OSError, h2.exceptions.H2Error) as exc:
                    self._fail_locked(_lost(exc))
                    return
                if not self._streams and time.monotonic() - self.idle_since > conf.get(
                    "KEEPALIVE_IDLE_SECONDS"
                ):
                    self._close_locked("idle")
                    return

    def _receive(self) -> None:
        received = False
        while True:
            try:
                data = self._sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not data:
                raise ConnectionResetError("connection closed by the receiver")
            received = True
            self._dispatch(self._h2.receive_data(data))
        if received:
            self._flush(time.monotonic() + WRITE_STALL_SECONDS)
            self._changed.notify_all()

    def _dispatch(self, events) -> None:
        for event in events:
            stream = self._streams.get(getattr(event, "stream_id", None) or 0)
            if isinstance(event, h2.events.ResponseReceived) and stream is not None:
                for name, value in event.headers:
                    if name == b":status":
                        stream.status = int(value)
                    else:
                        stream.headers.append((name, value))
            elif isinstance(event, h2.events.DataReceived):
                if stream is not None and not stream.closed:
                    stream.chunks.append((event.data, event.flow_controlled_length))
                else:
                    # Data for a stream we left: give the window back, it is discarded.
                    self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and stream is not None:
                stream.ended = True
            elif isinstance(event, h2.events.StreamReset) and stream is not None:
                kind = (
                    StreamRefused if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM else StreamError
                )
                stream.error = kind(f"stream reset by the receiver ({_error_name(event.error_code)})")
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self._settings_received = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._goaway = True
                last = event.last_stream_id or 0
                for other in self._streams.values():
                    if other.id > last and not other.ended:
                        other.error = StreamRefused("the receiver refused the stream (GOAWAY)")

    def _fail_locked(self, error: StreamError) -> None:
        self._failure = self._failure or error
        for stream in self._streams.values():
            if not stream.ended and stream.error is None:
                stream.error = error
        self._close_locked(str(error))

    def _close_locked(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._h2.close_connection()
            self._sock.send(self._h2.data_to_send())
        except (OSError, ValueError, h2.exceptions.H2Error):
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        self._changed.notify_all()
        self._on_close(self)

    def close(self) -> None:
        with self._changed:
            self._close_locked("closed")


def _error_name(code) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error code {code}"


def _lost(exc: BaseException, when: str = "") -> StreamError:
    if isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None):
        return TlsStreamError(exc.reason)
    if isinstance(exc, ConnectionResetError):
        return StreamError(" ".join(filter(None, ("connection closed by the receiver", when))))
    return StreamError(" ".join(filter(None, ("connection lost", when))) + f": {exc}")


class Http2Transport:
    """Sends an adapter's HTTPS requests over HTTP/2 where the origin speaks it.

    `send` returns None when the origin speaks HTTP/1.1: the adapter sends it the usual way.
    """

    def __init__(self, context: ssl.SSLContext):
        self._context = context  # offers h2 and http/1.1; never shared with the HTTP/1.1 pools
        self._lock = threading.Lock()
        self._http11_since: dict[tuple[str, int], float] = {}  # origins that chose HTTP/1.1
        self._connections: dict[tuple[str, int], list[Http2Connection]] = {}
        self._opening: dict[tuple[str, int], threading.Lock] = {}

    def send(self, adapter, request: requests.PreparedRequest, *, timeout, **_ignored):
        parts = urlsplit(request.url)
        origin = (parts.hostname, parts.port or 443)
        if self._speaks_http11(origin):
            return None
        connect_timeout = timeout[0] if isinstance(timeout, tuple) else timeout
        # A stream the receiver allows, on a connection of the origin's (a new one when all are full,
        # or when the receiver refused the stream on the one it was sent on).
        refusals = 0
        while True:
            connection = self._connection(origin, request, connect_timeout, adapter.max_retries)
            if connection is None:
                return None
            try:
                return self._exchange(adapter, request, parts, origin, connection)
            except ConnectionFull:
                continue
            except StreamRefused as exc:
                refusals += 1
                if refusals > REFUSED_STREAM_RETRIES:
                    raise requests.ConnectionError(exc, request=request) from exc

    def _exchange(self, adapter, request, parts, origin, connection):
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            stream = connection.request(
                method=request.method,
                authority=f"{host}:{origin[1]}" if parts.port else host,
                path=path,
                headers=_wire_headers(request.headers),
                body=_body_bytes(request.body),
            )
        except TlsStreamError as exc:
            raise requests.exceptions.SSLError(exc, request=request) from exc
        except StreamRefused:
            raise
        except StreamError as exc:
            raise requests.ConnectionError(exc, request=request) from exc
        raw = HTTPResponse(
            body=stream,
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in stream.headers],
            status=stream.status,
            version=20,
            version_string="HTTP/2",
            reason=None,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
            request_url=request.url,
            enforce_content_length=True,
        )
        return adapter.build_response(request, raw)

    # --- connections ---------------------------------------------------------------------------
    def _connection(self, origin, request, connect_timeout, retries) -> Http2Connection | None:
        with self._lock:
            opening = self._opening.setdefault(origin, threading.Lock())
        # One thread opens a connection to an origin at a time, so concurrent attempts share it.
        with opening:
            for connection in list(self._connections.get(origin, ())):
                if connection.available(settings_timeout=connect_timeout or WRITE_STALL_SECONDS):
                    return connection
            if self._speaks_http11(origin):
                return None
            sock = self._connect(origin, request, connect_timeout, retries)
            if sock.selected_alpn_protocol() != "h2":
                # This attempt connects again through the HTTP/1.1 pools, the next ones go there at once.
                self._http11_since[origin] = time.monotonic()
                sock.close()
                return None
            connection = Http2Connection(sock, on_close=lambda closed: self._forget(origin, closed))
            with self._lock:
                self._connections.setdefault(origin, []).append(connection)
            return connection

    def _speaks_http11(self, origin) -> bool:
        since = self._http11_since.get(origin)
        return since is not None and time.monotonic() - since < HTTP11_MEMORY_SECONDS

    def _forget(self, origin, connection: Http2Connection) -> None:
        with self._lock:
            kept = [c for c in self._connections.get(origin, ()) if c is not connection]
            if kept:
                self._connections[origin] = kept
            else:
                self._connections.pop(origin, None)

    def _connect(self, origin, request, connect_timeout, retries) -> ssl.SSLSocket:
        """A TLS socket to the origin: connected by the SSRF guard, retried in the connection phase
        only, verified against the identity's trust, cut by the attempt's deadline until it is
        handed to the shared connection."""
        host, port = origin
        while True:
            guarded = GuardedHTTPSConnection(host, port, timeout=connect_timeout)
            try:
                raw = guarded._new_conn()
                break
            except (NewConnectionError, NameResolutionError, ConnectTimeoutError) as exc:
                try:
                    retries = retries.increment(method=request.method, url=request.url, error=exc)
                except MaxRetryError as failed:
                    if isinstance(failed.reason, ConnectTimeoutError) and not isinstance(
                        failed.reason, NewConnectionError
                    ):
                        raise requests.ConnectTimeout(failed, request=request) from exc
                    raise requests.ConnectionError(failed, request=request) from exc
                retries.sleep()
        watch = current_watch()
        if watch is not None:
            process_watchdog().attach(watch, raw)
        try:
            raw.settimeout(connect_timeout)
            return self._context.wrap_socket(raw, server_hostname=host.strip("[]"))
        except ssl.SSLError as exc:
            raw.close()
            raise requests.exceptions.SSLError(exc, request=request) from exc
        except TimeoutError as exc:
            raw.close()
            raise requests.ConnectTimeout(exc, request=request) from exc
        except OSError as exc:
            raw.close()
            raise requests.ConnectionError(exc, request=request) from exc
        finally:
            if watch is not None:
                process_watchdog().detach(watch)

    # --- state, for pool_state ------------------------------------------------------------------
    def state(self) -> dict:
        with self._lock:
            connections = [c for group in self._connections.values() for c in group]
        streams = [c.streams() for c in connections]
        return {
            "connections": len(connections),
            "active": sum(1 for count in streams if count),
            "idle": sum(1 for count in streams if not count),
            "streams": sum(streams),
        }

    def close(self) -> None:
        """Close every connection and forget what was learnt of the origins."""
        with self._lock:
            connections = [c for group in self._connections.values() for c in group]
            self._http11_since.clear()
        for connection in connections:
            connection.close()


def _wire_headers(headers) -> list[tuple[bytes, bytes]]:
    """The request's headers as HTTP/2 sends them: lower-case names, values byte for byte as
    http.client would send them (latin-1), connection-specific ones left out."""
    wire = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in CONNECTION_HEADERS:
            continue
        wire.append(
            (lowered.encode("latin-1"), value if isinstance(value, bytes) else str(value).encode("latin-1"))
        )
    return wire


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)
