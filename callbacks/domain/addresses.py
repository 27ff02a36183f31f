"""Which addresses a callback may reach, judged from the text alone (no DNS).

The SSRF guard (callbacks.delivery.ssrf) applies `forbidden_reason` to every address a name resolves
to when a socket opens; `check_url_literal` refuses, when a callback is registered, URLs whose host is an
address literal in any spelling the resolver accepts (127.1, 2130706433, 0x7f000001, 0177.0.0.1,
[::ffff:127.0.0.1]) or a localhost name. Other names can only be judged when they are resolved.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from callbacks.domain.hosts import normalise_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints: refused whatever CALLBACKS_ALLOWED_NETWORKS exempts, since an operator
# listing an internal range (169.254.0.0/16, fd00::/8, even 0.0.0.0/0) never means to hand tenants the
# machine's credentials. Most are link-local or unique-local and refused anyway; listed so that the
# reason is explicit and so the public-looking ones (Oracle's 192.0.0.192, Azure's 168.63.129.16) are caught.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS (IPv6)
        "fd00:ec2::23",  # AWS DNS (IPv6)
        "fd20:ce::254",  # GCP (IPv6)
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer
    )
)
# Ranges the IANA special-purpose registries mark not globally reachable which Python's ipaddress (its
# tables lag the registries) still calls global.
NOT_GLOBAL_NETWORKS = (
    (ipaddress.ip_network("192.0.0.0/24"), "an IETF protocol assignment address"),
    (ipaddress.ip_network("fec0::/10"), "a site-local address"),
    (ipaddress.ip_network("3fff::/20"), "a documentation address"),
)
# ...but these two of 192.0.0.0/24 are anycast services meant to be reached from anywhere (RFC 7723
# Port Control Protocol, RFC 8155 TURN).
GLOBAL_IN_NOT_GLOBAL = frozenset(ipaddress.ip_address(a) for a in ("192.0.0.9", "192.0.0.10"))
# Carrier-grade NAT (RFC 6598); is_global already excludes it, named here for the reason text.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 well-known prefix: the last 32 bits are an IPv4 address a NAT64 gateway would reach.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def forbidden_reason(address: IPAddress) -> str | None:
    """Why this address may not be connected to under the current settings, or None."""
    if settings.CALLBACKS["ALLOW_PRIVATE_NETWORKS"]:
        return None
    metadata = _metadata_reason(address)
    if metadata:
        return metadata
    allowed = settings.CALLBACKS["ALLOWED_NETWORKS"]
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


def _metadata_reason(address: IPAddress) -> str | None:
    """A cloud metadata address, written directly, IPv4-mapped or carried (6to4, NAT64)."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if address in METADATA_ADDRESSES or mapped in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for carried in _carried_ipv4(address):
        if carried in METADATA_ADDRESSES:
            return f"a cloud metadata address (it carries {carried})"
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
    for network, reason in NOT_GLOBAL_NETWORKS:
        if address.version == network.version and address in network and address not in GLOBAL_IN_NOT_GLOBAL:
            return reason
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


def sockaddr_address(host: str) -> IPAddress:
    # IPv6 socket addresses may carry a zone ("fe80::1%eth0").
    return ipaddress.ip_address(host.split("%", 1)[0])


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
    try:
        name = normalise_host(host)  # as it is sent: full-width "ｌｏｃａｌｈｏｓｔ" is localhost
    except ValueError:
        name = host
    reason = localhost_reason(name)
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


def localhost_reason(host: str) -> str | None:
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
    return sockaddr_address(results[0][4][0])
