"""The SSRF guard: no callback reaches loopback, private, link-local, metadata or other
non-public addresses unless the operator exempts them.

The check runs when a socket is opened, on the addresses the name actually resolved to, and
the socket is then connected to exactly the address that was checked: a URL that names a
public host resolving inward, or a DNS answer that changes between check and connect
(rebinding), cannot get through. Redirects are never followed, and environment proxies are
ignored (http/session.py), so the connected address is always the target's.

`check_url_literal` refuses, at creation time, URLs whose host is an address literal in any
spelling the resolver accepts (127.1, 2130706433, 0x7f000001, 0177.0.0.1, [::ffff:127.0.0.1])
or a localhost name; other names can only be judged when they are resolved, at send time.

Known limit: getaddrinfo has no timeout of its own, so a very slow resolver can hold an
attempt past its deadline (the deadline watchdog in http/deadline.py covers sockets, not lookups).
"""

import ipaddress
import socket
import sys
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from callbacks import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints. Most are link-local or unique-local and refused anyway; listed so
# that the reason is explicit and so the public-looking ones (Oracle's 192.0.0.192) are caught.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "fd00:ec2::254",
        "100.100.100.200",
        "192.0.0.192",
    )
)
# Carrier-grade NAT (RFC 6598); is_global already excludes it, named here for the reason text.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 well-known prefix: the last 32 bits are an IPv4 address a NAT64 gateway would reach.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class SsrfBlocked(Exception):
    """A connection was refused by the guard.

    Deliberately not an OSError: urllib3 retries OSErrors raised while connecting as
    connection failures, and a refused address must end the attempt at once, unretried.
    """


def forbidden_reason(address: IPAddress) -> str | None:
    """Why this address may not be connected to under the current settings, or None."""
    if conf.get("ALLOW_PRIVATE_NETWORKS"):
        return None
    allowed = conf.get("ALLOWED_NETWORKS")
    if _exempt(address, allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # Connecting to ::ffff:a.b.c.d reaches a.b.c.d: judge (and exempt) it as that.
        address = address.ipv4_mapped
        if _exempt(address, allowed):
            return None
    for candidate in (address, *_carried_ipv4(address)):
        reason = _classify(candidate)
        if reason:
            return reason if candidate == address else f"{reason} (it carries {candidate})"
    return None


def _exempt(address: IPAddress, allowed) -> bool:
    return any(address.version == network.version and address in network for network in allowed)


def _carried_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a 6to4 or NAT64 address leads to. They only ever add a refusal: an
    exemption of the IPv4 address does not cover the IPv6 one, which goes elsewhere."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    carried = []
    if address.sixtofour:
        carried.append(address.sixtofour)
    if address in NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return carried


def _classify(address: IPAddress) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def _parse_sockaddr_host(host: str) -> IPAddress:
    # IPv6 socket addresses may carry a zone ("fe80::1%eth0").
    return ipaddress.ip_address(host.split("%", 1)[0])


def resolve_checked(host: str, port: int) -> list[tuple]:
    """getaddrinfo results for host, all of them allowed; raises SsrfBlocked otherwise.

    Any forbidden address refuses the whole name: trying only the allowed ones would let a
    name with one public and one inward record reach inside by making the public one fail.
    """
    host = host.strip("[]")
    reason = _localhost_reason(host)
    if reason:
        # Refused before resolving: some resolvers send these names to DNS, others answer
        # loopback themselves (RFC 6761 says they are loopback, whatever DNS says).
        raise SsrfBlocked(f"blocked by the SSRF guard: {reason}")
    try:
        results = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except UnicodeError:
        raise SsrfBlocked(f"invalid host name {host!r}") from None
    for *_, sockaddr in results:
        reason = forbidden_reason(_parse_sockaddr_host(sockaddr[0]))
        if reason:
            shown = sockaddr[0] if host == sockaddr[0] else f"{host} resolves to {sockaddr[0]}, which"
            raise SsrfBlocked(f"blocked by the SSRF guard: {shown} is {reason}")
    return results


class _GuardedConnectMixin:
    """Replaces urllib3's _new_conn: resolve, check every address, connect to a checked one.

    `host` is left as the name, so TLS still sends it as SNI and checks the certificate
    against it.
    """

    def _new_conn(self) -> socket.socket:
        try:
            results = resolve_checked(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for family, socktype, proto, _canonname, sockaddr in results:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not None:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class GuardedHTTPConnection(_GuardedConnectMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectMixin, HTTPSConnection):
    pass


def check_url_literal(url: str) -> str | None:
    """For creation-time validation: why this URL's host is refused, or None.

    Only hosts that need no DNS are judged here (address literals in every spelling the
    resolver accepts, and localhost names); every other name is checked when it is resolved.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return "the URL cannot be parsed"
    if not host:
        return "the URL has no host"
    host = host.rstrip(".").lower()
    reason = _localhost_reason(host)
    if reason:
        return reason
    address = _numeric_address(host)
    if address is None:
        return None
    reason = forbidden_reason(address)
    if not reason:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    shown = host if host == str(address) else f"{host} ({address})"
    return f"{shown} is {reason}"


def _localhost_reason(host: str) -> str | None:
    """RFC 6761: "localhost" and "*.localhost" are loopback names."""
    name = host.rstrip(".").lower()
    if name != "localhost" and not name.endswith(".localhost"):
        return None
    for address in ("127.0.0.1", "::1"):
        reason = forbidden_reason(ipaddress.ip_address(address))
        if reason:
            return f"{name} is a loopback name, and {address} is {reason}"
    return None


def _numeric_address(host: str) -> IPAddress | None:
    # AI_NUMERICHOST parses exactly the literal forms getaddrinfo would accept at send time
    # (inet_aton's short, decimal, hex and octal IPv4 forms; inet_pton's IPv6) without DNS.
    try:
        results = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return _parse_sockaddr_host(results[0][4][0])
