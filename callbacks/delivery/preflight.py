"""Would a callback to this URL go out? The checks a tenant's callback passes on its way, in the order
delivery makes them, each with its own result, for the admin's "Would this URL be allowed?" page:

1. the URL rules every registration applies (callbacks.domain.urls: scheme, length, host, no
   credentials or fragment);
2. the tenant's whitelist (callbacks.whitelist), which refuses only when the tenant enforces it;
3. a 410 Gone mark the tenant's receiver left on this URL (callbacks end `gone` unsent until cleared);
4. the SSRF guard (callbacks.delivery.ssrf) on the addresses the host resolves to now, resolved as the
   sender does (the host normalised as it is sent), so an internal address is refused unless the
   installation exempts it (CALLBACKS_ALLOW_PRIVATE_NETWORKS, CALLBACKS_ALLOWED_NETWORKS).

A name that does not resolve now cannot be judged: the verdict says so rather than guess.
"""

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from callbacks.delivery.ssrf import SsrfBlocked, resolve_checked
from callbacks.domain.addresses import check_url_literal
from callbacks.domain.urls import DEFAULT_PORTS, TargetUrlError, sendable_url, validate_target_url
from callbacks.domain.whitelist import denial_reason, entry_matches
from callbacks.models import GoneUrl
from callbacks.whitelist import enabled_patterns

PASSED, REFUSED, UNKNOWN, SKIPPED = "passed", "refused", "unknown", "not checked"
# A page must not hang on a resolver that never answers; the sender bounds it by the attempt's deadline.
LOOKUP_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # PASSED, REFUSED, UNKNOWN or SKIPPED
    detail: str


@dataclass
class UrlVerdict:
    url: str
    checks: list[Check]
    enforced: bool
    matching: list = field(default_factory=list)  # the enabled whitelist entries that match

    @property
    def verdict(self) -> str:
        """ "allowed" when every check passed, "refused" when one refused, else "unknown"."""
        results = {check.result for check in self.checks}
        if REFUSED in results:
            return "refused"
        return "allowed" if results == {PASSED} else "unknown"

    @property
    def allowed(self) -> bool:
        return self.verdict == "allowed"


def url_verdict(*, tenant, url: str, lookup=socket.getaddrinfo) -> UrlVerdict:
    rules = _url_rules(url)
    entries = list(tenant.whitelist.filter(enabled=True).order_by("host"))
    result = UrlVerdict(url=url, checks=[rules], enforced=tenant.enforce_whitelist)
    if rules.result != PASSED:
        result.checks += [
            Check(name, SKIPPED, "the URL itself is refused") for name in ("whitelist", "gone", "SSRF guard")
        ]
        return result
    result.matching = [entry for entry in entries if entry_matches(entry, url)]
    result.checks.append(_whitelist(tenant, url, len(entries)))
    result.checks.append(_gone(tenant, url))
    result.checks.append(_ssrf(url, lookup))
    return result


def _url_rules(url: str) -> Check:
    try:
        validate_target_url(url)
    except TargetUrlError as exc:
        # An address literal the guard refuses is the guard's refusal, shown on its own line.
        if str(exc) != check_url_literal(url):
            return Check("URL rules", REFUSED, str(exc))
    return Check("URL rules", PASSED, "http or https, a valid host, no credentials or fragment, not too long")


def _whitelist(tenant, url: str, entry_count: int) -> Check:
    reason = denial_reason(enabled_patterns(tenant), url)
    if not tenant.enforce_whitelist:
        if entry_count == 0:
            would = "it has no enabled entries"
        else:
            entries = f"{entry_count} enabled entr{'y' if entry_count == 1 else 'ies'}"
            would = f"enforced, its {entries} would " + ("allow this URL" if reason is None else "refuse it")
        return Check("whitelist", PASSED, f"not enforced: {tenant.name} may call every URL ({would})")
    if reason is None:
        return Check("whitelist", PASSED, "enforced, and an enabled entry allows this URL")
    return Check("whitelist", REFUSED, f"enforced: {reason}")


def _gone(tenant, url: str) -> Check:
    gone = GoneUrl.objects.filter(tenant=tenant, url=url).first()
    if gone is None:
        return Check("gone", PASSED, "no receiver answered 410 Gone for this URL")
    return Check(
        "gone",
        REFUSED,
        f"the receiver answered 410 Gone at {gone.marked_at:%Y-%m-%d %H:%M:%S} UTC; clear the mark",
    )


def _ssrf(url: str, lookup) -> Check:
    parts = urlsplit(sendable_url(url))
    host, port = parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        results = pool.submit(resolve_checked, host, port, lookup=lookup).result(timeout=LOOKUP_SECONDS)
    except SsrfBlocked as exc:
        return Check("SSRF guard", REFUSED, str(exc))
    except FutureTimeout:
        return Check("SSRF guard", UNKNOWN, f"resolving {host} took over {LOOKUP_SECONDS:g} s; try again")
    except OSError as exc:
        return Check("SSRF guard", UNKNOWN, f"{host} does not resolve from here now ({exc}): cannot tell")
    finally:
        pool.shutdown(wait=False)
    addresses = sorted({sockaddr[0] for *_, sockaddr in results})
    inward = [a for a in addresses if not ipaddress.ip_address(a.split("%", 1)[0]).is_global]
    exempt = ""
    if inward:
        setting = (
            "CALLBACKS_ALLOW_PRIVATE_NETWORKS"
            if settings.CALLBACKS["ALLOW_PRIVATE_NETWORKS"]
            else "CALLBACKS_ALLOWED_NETWORKS"
        )
        exempt = f" ({', '.join(inward)} not public, exempted by this installation's {setting})"
    return Check("SSRF guard", PASSED, f"{host} resolves to {', '.join(addresses)}: allowed{exempt}")
