"""One attempt: `send` makes one request within a hard total deadline and keeps at most
`body_limit` bytes of the answer; the body loop also checks the deadline between chunks.

TLS verification is always on.
"""

import functools
import time
from dataclasses import dataclass

import requests
from urllib3.exceptions import ReadTimeoutError

from callbacks.delivery.http.deadline import TotalTimeout, Watch, current, process_watchdog
from callbacks.delivery.http.heads import headers_cut
from callbacks.delivery.http.session import process
from callbacks.delivery.http.tls import TlsIdentity

CHUNK_SIZE = 64 * 1024
# urllib3's HTTPResponse.version -> the protocol version as OpenTelemetry and executions name it.
_HTTP_VERSIONS = {10: "1.0", 11: "1.1", 20: "2"}


@dataclass
class RawResponse:
    status_code: int
    headers: dict
    body: bytes  # at most body_limit bytes
    truncated: bool  # the receiver sent more than body_limit bytes
    duration_ms: float
    http_version: str = "1.1"  # the protocol the response came over: "1.1" or "2" ("1.0" from an old server)
    headers_cut: bool = False  # the head was longer than RESPONSE_HEADERS_LIMIT: the rest not read


def send(
    *,
    method: str,
    url: str,
    headers: dict,
    body: bytes,
    connect_timeout: float,
    total_timeout: float,
    body_limit: int,
    tls_identity: TlsIdentity | None = None,
) -> RawResponse:
    """Send one request; raises requests exceptions (TotalTimeout for the deadline) or SsrfBlocked.

    `tls_identity`: the tenant's client certificate and CAs (None: the installation's trust)."""
    state = process()
    started = time.perf_counter()
    watch = Watch(time.monotonic() + total_timeout)
    watchdog = process_watchdog()
    watchdog.add(watch)
    current.watch = watch
    try:
        # The adapter is called directly rather than through Session.send: even with
        # allow_redirects=False, Session.send reads a redirect's whole body (uncapped) to
        # prepare the next request, and it would keep receivers' cookies in the session jar.
        prepared = _prepare(method, url, headers, body)
        # Trust (CALLBACKS_CA_BUNDLE and the identity's CAs) is in the adapter's TLS contexts.
        response = state.adapter_for(tls_identity).send(
            prepared,
            stream=True,
            timeout=(min(connect_timeout, total_timeout), total_timeout),
            verify=True,
            proxies={},
        )
        with response:
            content, truncated = _read_body(response, body_limit, watch, total_timeout)
            if watch.cut:
                # http.client takes an end of stream inside the headers for their end, so
                # a response cut short by the watchdog can look complete: it is not.
                raise TotalTimeout(total_timeout)
            return RawResponse(
                status_code=response.status_code,
                headers=dict(response.headers),
                body=content,
                truncated=truncated,
                duration_ms=(time.perf_counter() - started) * 1000,
                http_version=_HTTP_VERSIONS.get(getattr(response.raw, "version", 11), "1.1"),
                headers_cut=headers_cut(response),
            )
    except requests.RequestException as exc:
        if watch.expired and not isinstance(exc, TotalTimeout):
            raise TotalTimeout(total_timeout) from exc
        raise
    finally:
        current.watch = None
        watchdog.finish(watch)


def _prepare(method: str, url: str, headers: dict, body: bytes) -> requests.PreparedRequest:
    """The request as the adapter sends it. Session.prepare_request would merge session settings
    (cookies, auth, hooks) that are always empty here, and at ~0.2 ms it was a seventh of a
    worker's CPU per callback (python -m bench.profile --py-spy); the URL, re-parsed and
    re-quoted for every attempt, is prepared once per distinct URL."""
    prepared = requests.PreparedRequest()
    prepared.method = method.upper()
    prepared.url, url_auth = _prepared_url(url)
    merged = requests.structures.CaseInsensitiveDict(_SESSION_HEADERS)
    merged.update(headers)
    prepared.prepare_headers(merged)  # validates names and values (no header injection)
    prepared.prepare_body(body or None, None)
    if url_auth:
        prepared.prepare_auth(url_auth)  # user:password@ in the URL: Basic auth, as requests does
    # Merged and validated: one name per header whatever its case. A plain dict from here on,
    # because urllib3 copies the headers for every request and holds the copy while the receiver
    # thinks: a case-insensitive copy remakes each name lower-cased, ~5 KB of objects per callback
    # in flight for the two. The adapter only asks for "Content-Length", as prepare_body names it.
    prepared.headers = dict(prepared.headers.items())
    prepared.hooks = {"response": []}
    return prepared


# What a Session adds to every request (User-Agent, Accept, Accept-Encoding, Connection).
_SESSION_HEADERS = requests.utils.default_headers()


@functools.lru_cache(maxsize=4096)
def _prepared_url(url: str) -> tuple[str, tuple | None]:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    url_auth = requests.utils.get_auth_from_url(prepared.url)
    return prepared.url, (url_auth if any(url_auth) else None)


def _read_body(
    response: requests.Response, limit: int, watch: Watch, total_timeout: float
) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body; leaving early closes the connection (never drained)."""
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
            if time.monotonic() > watch.deadline:
                raise TotalTimeout(total_timeout)
            room = limit - size
            if len(chunk) > room:
                parts.append(chunk[:room])
                return b"".join(parts), True
            parts.append(chunk)
            size += len(chunk)
    except requests.ConnectionError as exc:
        # requests reports a read timeout inside the body as a ConnectionError.
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise requests.ReadTimeout(exc.args[0]) from exc
        raise
    return b"".join(parts), False
