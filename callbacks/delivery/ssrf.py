"""The SSRF guard: no callback reaches loopback, private, link-local or other non-public
addresses unless the operator exempts them, nor cloud metadata addresses, whatever is exempt.

The check runs when a socket is opened, on the addresses the name actually resolved to, and
the socket is then connected to exactly the address that was checked: a URL that names a
public host resolving inward, or a DNS answer that changes between check and connect
(rebinding), cannot get through. Redirects are never followed, and environment proxies are
ignored (http/session.py), so the connected address is always the target's.

Which addresses are forbidden is decided by callbacks.domain.addresses, which also refuses address
literals when a callback is registered.

getaddrinfo has no timeout of its own: the HTTP client's connections (http/pools.py) replace
`lookup`, so that the name is resolved within the attempt's deadline.
"""

import socket
import sys

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from callbacks.domain.addresses import forbidden_reason, localhost_reason, sockaddr_address


class SsrfBlocked(Exception):
    """A connection was refused by the guard.

    Deliberately not an OSError: urllib3 retries OSErrors raised while connecting as
    connection failures, and a refused address must end the attempt at once, unretried.
    """


def resolve_checked(host: str, port: int, *, lookup=socket.getaddrinfo) -> list[tuple]:
    """getaddrinfo results for host (through `lookup`), all of them allowed; raises SsrfBlocked otherwise.

    Any forbidden address refuses the whole name: trying only the allowed ones would let a
    name with one public and one inward record reach inside by making the public one fail.
    """
    host = host.strip("[]")
    reason = localhost_reason(host)
    if reason:
        # Refused before resolving: some resolvers send these names to DNS, others answer
        # loopback themselves (RFC 6761 says they are loopback, whatever DNS says).
        raise SsrfBlocked(f"blocked by the SSRF guard: {reason}")
    try:
        results = lookup(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except UnicodeError:
        raise SsrfBlocked(f"invalid host name {host!r}") from None
    for *_, sockaddr in results:
        reason = forbidden_reason(sockaddr_address(sockaddr[0]))
        if reason:
            shown = sockaddr[0] if host == sockaddr[0] else f"{host} resolves to {sockaddr[0]}, which"
            raise SsrfBlocked(f"blocked by the SSRF guard: {shown} is {reason}")
    return results


class _GuardedConnectMixin:
    """Replaces urllib3's _new_conn: resolve, check every address, connect to a checked one.

    `host` is left as the name, so TLS still sends it as SNI and checks the certificate
    against it.
    """

    def lookup(self, host: str, port: int, family: int, socktype: int) -> list[tuple]:
        """How the name is resolved: getaddrinfo itself, unless a subclass bounds it in time."""
        return socket.getaddrinfo(host, port, family, socktype)

    def _new_conn(self) -> socket.socket:
        try:
            results = resolve_checked(self._dns_host, self.port, lookup=self.lookup)
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
