"""Checks on callback targets shared by the API, schedules and the admin.

A target that passes here can still be refused at send time: the SSRF guard checks the address each
connection actually reaches (DNS can change); this module only refuses what is wrong in the text itself.
"""

import functools
import ipaddress
from urllib.parse import urlsplit

from callbacks.domain.addresses import check_url_literal
from callbacks.domain.bounds import MAX_URL_LENGTH
from callbacks.domain.hosts import normalise_host

DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetUrlError(ValueError):
    pass


def validate_target_url(url: str) -> str:
    """The URL, checked: http or https with a host, no credentials, no fragment. Raises TargetUrlError."""
    if not isinstance(url, str) or not url:
        raise TargetUrlError("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise TargetUrlError(f"at most {MAX_URL_LENGTH} characters")
    if url != url.strip() or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetUrlError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetUrlError(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise TargetUrlError("only http and https URLs are accepted")
    if not parts.hostname:
        raise TargetUrlError("the URL has no host")
    # Credentials in a URL end up in logs, the admin and the receiver's access log; use a header instead.
    if "@" in parts.netloc:
        raise TargetUrlError("credentials in the URL are refused; send them in a header")
    # A fragment never reaches the server; refusing it makes sure the caller is not expecting it to.
    if "#" in url:
        raise TargetUrlError("a fragment (#...) is never sent to the server; remove it")
    if port == 0:
        raise TargetUrlError("port 0 is not a valid port")
    host_problem = _host_problem(parts.hostname, bracketed="[" in parts.netloc)
    if host_problem:
        raise TargetUrlError(host_problem)
    # A literal forbidden address (any spelling) is refused now, with a clear reason; names are
    # judged at send time by the address each connection reaches (the SSRF guard).
    ssrf_problem = check_url_literal(url)
    if ssrf_problem:
        raise TargetUrlError(ssrf_problem)
    return url


def url_origin(url: str) -> str:
    """scheme://host:port, the host normalised (callbacks.domain.hosts) and the default port filled in:
    the unit of breakers, limits and lanes. ValueError when the URL has no valid host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = _address_text(parts.hostname or "") or normalise_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{parts.port or DEFAULT_PORTS[scheme]}"


def url_path_and_query(url: str) -> str:
    """What follows the origin in a URL: its path, query and fragment as written ("" for none). The
    migration that made TaskSearchPath computed the same in SQL (0010_task_search)."""
    rest = url.partition("://")[2]
    ends = [index for index in (rest.find(mark) for mark in "/?#") if index >= 0]
    return rest[min(ends) :] if ends else ""


@functools.lru_cache(maxsize=4096)
def sendable_url(url: str) -> str:
    """The URL as it is sent: its host name normalised, so that what is connected to and named in Host
    and SNI is the host the whitelist matched and the origin keys on. Anything else is left as written
    (an address, or a URL that is not valid, which the sender refuses itself)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        name = normalise_host(host) if host and not _address_text(host) else host
    except ValueError:
        return url
    lead = f"{parts.scheme}://{parts.netloc}"
    if name == host or "[" in parts.netloc or not url.startswith(lead):
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    port = hostport.partition(":")[2]
    return f"{parts.scheme}://{userinfo}{at}{name}{':' + port if port else ''}{url[len(lead) :]}"


def _address_text(host: str) -> str | None:
    """The canonical text of an IP address, or None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if bracketed:
        return (
            None if address is not None and address.version == 6 else "not a valid IPv6 address in brackets"
        )
    if address is not None:
        return None if address.version == 4 else "an IPv6 address must be written in brackets"
    try:
        normalise_host(host)
    except ValueError as exc:
        return str(exc)
    return None
