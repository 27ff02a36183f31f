"""url_verdict: the checks delivery makes, one result each. Names are resolved through a fake resolver
here (the machine has no DNS); address literals go through getaddrinfo itself."""

import socket

import pytest

from callbacks.delivery.preflight import url_verdict

pytestmark = pytest.mark.django_db


def resolver(*addresses):
    def lookup(host, port, family, socktype):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return lookup


def failing(host, port, family, socktype):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def results(verdict) -> dict:
    return {check.name: check.result for check in verdict.checks}


def test_a_public_name_passes_every_check(tenant):
    verdict = url_verdict(tenant=tenant, url="https://hooks.example.com/x", lookup=resolver("93.184.215.14"))

    assert verdict.verdict == "allowed"
    assert "hooks.example.com resolves to 93.184.215.14" in verdict.checks[-1].detail


def test_a_public_name_resolving_inward_is_refused_like_delivery_refuses_it(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": []}

    verdict = url_verdict(
        tenant=tenant, url="https://hooks.example.com/x", lookup=resolver("93.184.215.14", "10.0.0.7")
    )

    assert results(verdict)["SSRF guard"] == "refused"
    assert "hooks.example.com resolves to 10.0.0.7, which is a private address" in verdict.checks[-1].detail
    assert verdict.verdict == "refused"


def test_a_name_that_does_not_resolve_cannot_be_judged(tenant):
    verdict = url_verdict(tenant=tenant, url="https://nowhere.example.com/", lookup=failing)

    assert results(verdict)["SSRF guard"] == "unknown"
    assert verdict.verdict == "unknown" and not verdict.allowed


def test_the_host_is_resolved_as_it_is_sent(tenant):
    asked = []

    def lookup(host, port, family, socktype):
        asked.append((host, port))
        return resolver("93.184.215.14")(host, port, family, socktype)

    url_verdict(tenant=tenant, url="http://HOOKS.Example.com./x", lookup=lookup)

    assert asked == [("hooks.example.com", 80)]
