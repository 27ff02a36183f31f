"""Who may read the installation's inner workings: /metrics and the details of /readyz.

Open to anyone when neither MONITORING_TOKEN nor MONITORING_ALLOWED_NETWORKS is set (the embedded
set-up on 127.0.0.1). Otherwise a request needs the token as a bearer token, or to come from one of
the networks. The network is matched against the direct peer (REMOTE_ADDR), never a forwarded
header a client could write: behind a reverse proxy every request comes from the proxy, so there the
token is the way, or the proxy refuses /metrics itself (docs/install.md).
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import JsonResponse


def is_restricted() -> bool:
    return bool(settings.MONITORING_TOKEN or settings.MONITORING_ALLOWED_NETWORKS)


def may_read_internals(request) -> bool:
    if not is_restricted():
        return True
    return _has_token(request) or _from_allowed_network(request)


def refusal() -> JsonResponse:
    """401 naming the bearer scheme when a token would do, 403 when only networks are allowed."""
    if settings.MONITORING_TOKEN:
        response = JsonResponse(
            {
                "error": {
                    "code": "not_authenticated",
                    "message": "A bearer token (MONITORING_TOKEN) is required.",
                }
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="monitoring"'
        return response
    return JsonResponse(
        {
            "error": {
                "code": "forbidden",
                "message": "Not allowed from this address (MONITORING_ALLOWED_NETWORKS).",
            }
        },
        status=403,
    )


def _has_token(request) -> bool:
    token = settings.MONITORING_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def _from_allowed_network(request) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
        peer = peer.ipv4_mapped
    return any(peer in network for network in settings.MONITORING_ALLOWED_NETWORKS)
