"""Checks on callback targets shared by the API, schedules and the admin.

A target that passes here can still be refused at send time: the SSRF guard checks the address each
connection actually reaches (DNS can change); this module only refuses what is wrong in the text itself.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from callbacks.domain.addresses import check_url_literal
from callbacks.domain.bounds import MAX_URL_LENGTH

DEFAULT_PORTS = {"http": 80, "https": 443}

# DNS labels; underscores too, which internal names carry and HTTP clients resolve anyway. Single-label
# names are fine: internal receivers ("http://billing:8080/hook") are a main use.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


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
    """scheme://host:port, lower-cased with the default port filled in: the unit of breakers and limits."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""  # urlsplit lower-cases the host and drops IPv6 brackets
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{parts.port or DEFAULT_PORTS[scheme]}"


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
        ascii_host_name(host)
    except ValueError as exc:
        return str(exc)
    return None


def ascii_host_name(name: str) -> str:
    """The DNS name in its IDNA (xn--) form, one trailing dot allowed; ValueError when it is not one."""
    if re.fullmatch(r"[0-9.]+", name):
        raise ValueError("not a valid IPv4 address")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid host name") from None
    labels = (ascii_name[:-1] if ascii_name.endswith(".") else ascii_name).split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a valid host name")
    return ascii_name
