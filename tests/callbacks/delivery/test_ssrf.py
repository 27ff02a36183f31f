"""The SSRF guard: refused at creation for literals, at connect time for everything.

Loopback is forbidden here (the test settings normally exempt it), and listeners on 127.0.0.1
prove that nothing reached them. Other private addresses are only ever refused before any
connection; `loopback_only_traffic` fails the test if a connect to them is even attempted.
"""

import ipaddress
import socket

import pytest

from callbacks.delivery import ssrf
from callbacks.delivery.executor import send_attempt
from callbacks.domain import addresses
from tests.factories import make_task
from tests.receivers import Receiver, Reply, SilentListener

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "127.255.255.254",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0177.1",
    "0.0.0.0",
    "0",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::ffff:0.0.0.0]",
    "localhost",
    "LOCALHOST",
    "localhost.",
]
# Names with no numeric form: only resolving them reveals that they point inward.
RESOLVED_NAMES = ["localhost", "localhost.", "LocalHost"]
OTHER_FORBIDDEN = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.100.100.200",
    "192.0.0.192",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "[fd00::1]",
    "[fd00:ec2::254]",
    "[fe80::1]",
    "[ff02::1]",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a00:1::]",  # 6to4 of 10.0.0.1
    "012.0.0.1",  # octal 10.0.0.1
    "167772161",  # decimal 10.0.0.1
    "0xa9fea9fe",  # hex 169.254.169.254
]


@pytest.mark.usefixtures("guard_strict")
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + OTHER_FORBIDDEN + ["foo.localhost", "a.b.localhost"])
def test_literal_and_localhost_hosts_are_refused_at_creation(host):
    reason = addresses.check_url_literal(f"http://{host}:8080/hook")
    assert reason, host


@pytest.mark.usefixtures("guard_strict")
@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/",
        "http://1.1.1.1:8080/x",
        "https://[2606:4700:4700::1111]/",
        "https://example.com/hook",
        "http://internal.example/",  # a name: judged when resolved, at send time
    ],
)
def test_public_literals_and_names_pass_at_creation(url):
    assert addresses.check_url_literal(url) is None


def test_reasons_name_the_address_and_the_range(guard_strict):
    assert addresses.check_url_literal("http://2130706433/") == "2130706433 (127.0.0.1) is a loopback address"
    assert (
        addresses.check_url_literal("http://169.254.169.254/")
        == "169.254.169.254 is a cloud metadata address"
    )
    assert addresses.check_url_literal("http://100.64.0.1/") == "100.64.0.1 is a carrier-grade NAT address"
    assert (
        addresses.check_url_literal("http://[::ffff:10.0.0.1]/")
        == "::ffff:10.0.0.1 (10.0.0.1) is a private address"
    )
    assert "loopback name" in addresses.check_url_literal("http://localhost/")
    assert addresses.check_url_literal("http:///nohost") == "the URL has no host"


def test_allowed_networks_exempt_what_they_list_and_nothing_else(callbacks_settings):
    callbacks_settings(
        ALLOWED_NETWORKS=[ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128")]
    )
    assert addresses.check_url_literal("http://10.1.2.3/") is None
    assert addresses.check_url_literal("http://[::ffff:10.1.2.3]/") is None
    assert addresses.check_url_literal("http://[::1]/") is None
    assert addresses.check_url_literal("http://10.2.0.1/")
    assert addresses.check_url_literal("http://127.0.0.1/")
    # localhost resolves to 127.0.0.1 as well as ::1: still refused.
    assert addresses.check_url_literal("http://localhost/")


def test_allow_private_networks_turns_the_guard_off(callbacks_settings):
    callbacks_settings(ALLOWED_NETWORKS=[], ALLOW_PRIVATE_NETWORKS=True)
    for host in ["127.0.0.1", "10.0.0.1", "[::1]", "localhost", "169.254.169.254"]:
        assert addresses.check_url_literal(f"http://{host}/") is None


def test_the_test_settings_exempt_loopback_only():
    assert addresses.check_url_literal("http://127.0.0.1:8000/") is None
    assert addresses.check_url_literal("http://localhost:8000/") is None
    assert addresses.check_url_literal("http://0.0.0.0:8000/")
    assert addresses.check_url_literal("http://10.0.0.1/")


@pytest.mark.django_db
@pytest.mark.usefixtures("guard_strict", "loopback_only_traffic")
def test_every_spelling_of_loopback_is_blocked_at_send_time_and_nothing_connects(tenant):
    v4 = SilentListener("127.0.0.1")
    # The IPv6 spellings get a listener of their own on ::1 (same port not guaranteed, so per port).
    v6 = SilentListener("::1")
    try:
        for host in LOOPBACK_SPELLINGS:
            port = v6.port if host.startswith("[") and "ffff" not in host and host != "[::]" else v4.port
            for method in ("POST", "GET"):
                task = make_task(tenant=tenant, url=f"http://{host}:{port}/hook", method=method)
                result = send_attempt(task, attempt=1)
                assert (result.outcome, result.retryable) == ("ssrf_blocked", False), (host, result.error)
                assert result.error.startswith("blocked by the SSRF guard:"), result.error
        assert v4.connections() == 0
        assert v6.connections() == 0
    finally:
        v4.close()
        v6.close()


@pytest.mark.django_db
@pytest.mark.usefixtures("guard_strict", "loopback_only_traffic")
@pytest.mark.parametrize("name", RESOLVED_NAMES)
def test_names_resolving_to_loopback_are_blocked_before_any_request(tenant, name):
    with Receiver() as receiver:
        result = send_attempt(make_task(tenant=tenant, url=f"http://{name}:{receiver.port}/"), attempt=1)
        assert receiver.received == []
    assert result.outcome == "ssrf_blocked"
    assert "loopback name" in result.error


@pytest.mark.django_db
@pytest.mark.usefixtures("guard_strict", "loopback_only_traffic")
def test_https_is_guarded_too(tenant, silent_listener):
    result = send_attempt(
        make_task(tenant=tenant, url=f"https://127.0.0.1:{silent_listener.port}/"), attempt=1
    )
    assert result.outcome == "ssrf_blocked"
    assert silent_listener.connections() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_only_traffic")
@pytest.mark.parametrize("host", OTHER_FORBIDDEN)
def test_private_addresses_are_refused_before_connecting(tenant, host):
    result = send_attempt(make_task(tenant=tenant, url=f"http://{host}:8080/"), attempt=1)
    assert (result.outcome, result.retryable) == ("ssrf_blocked", False), result.error


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_only_traffic")
def test_a_redirect_pointing_inward_is_not_followed(tenant, callbacks_settings):
    # Only the receiver's own address is exempt; the redirect points at another loopback
    # address where a listener waits for a connection that must never come.
    callbacks_settings(ALLOWED_NETWORKS=[ipaddress.ip_network("127.0.0.1/32")])
    inside = SilentListener("127.0.0.2")
    try:
        location = f"http://127.0.0.2:{inside.port}/admin"
        with Receiver(Reply(status=302, headers={"Location": location})) as receiver:
            result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
            assert len(receiver.received) == 1
        assert result.outcome == "http_3xx"
        assert inside.connections() == 0
        # And sent directly, the inward address is refused.
        direct = send_attempt(make_task(tenant=tenant, url=location), attempt=1)
        assert direct.outcome == "ssrf_blocked"
        assert inside.connections() == 0
    finally:
        inside.close()


@pytest.mark.django_db
def test_allowed_networks_let_an_internal_receiver_through(tenant, callbacks_settings, receiver):
    callbacks_settings(ALLOWED_NETWORKS=[ipaddress.ip_network("127.0.0.0/8")])
    assert send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1).outcome == "success"
    callbacks_settings(ALLOWED_NETWORKS=[ipaddress.ip_network("127.0.0.2/32")])
    with Receiver() as other:
        assert send_attempt(make_task(tenant=tenant, url=other.url), attempt=1).outcome == "ssrf_blocked"
        assert other.received == []


@pytest.mark.django_db
def test_allow_private_networks_off_and_on(tenant, callbacks_settings):
    with Receiver() as receiver:
        callbacks_settings(ALLOWED_NETWORKS=[], ALLOW_PRIVATE_NETWORKS=False)
        assert send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1).outcome == "ssrf_blocked"
        assert receiver.received == []
        callbacks_settings(ALLOWED_NETWORKS=[], ALLOW_PRIVATE_NETWORKS=True)
        assert send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1).outcome == "success"
        assert len(receiver.received) == 1


# DNS answers cannot be scripted here without a resolver of our own, so these two replace
# getaddrinfo: the behaviour under test is what the guard does with the answers.


@pytest.mark.django_db
@pytest.mark.usefixtures("guard_strict", "loopback_only_traffic")
def test_a_name_with_one_public_and_one_inward_address_is_refused(tenant, monkeypatch, silent_listener):
    real = socket.getaddrinfo

    def mixed(host, port, *args, **kwargs):
        if host == "mixed.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    result = send_attempt(
        make_task(tenant=tenant, url=f"http://mixed.test:{silent_listener.port}/"), attempt=1
    )
    assert result.outcome == "ssrf_blocked"
    assert "mixed.test resolves to 127.0.0.1" in result.error
    assert silent_listener.connections() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_only_traffic")
def test_the_checked_address_is_the_one_connected_to(tenant, monkeypatch, receiver):
    """DNS rebinding: a second lookup would answer 10.0.0.1, but there is no second lookup."""
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = send_attempt(make_task(tenant=tenant, url=f"http://rebind.test:{receiver.port}/"), attempt=1)
    assert result.outcome == "success", result.error
    assert lookups == ["rebind.test"]
    assert receiver.wait_for(1)[0].headers["host"] == f"rebind.test:{receiver.port}"


def test_ssrf_blocked_is_not_an_oserror():
    # urllib3 retries OSErrors raised while connecting; a refusal must end the attempt at once.
    assert not issubclass(ssrf.SsrfBlocked, OSError)


# Not globally reachable by the IANA registries, yet global to this Python's ipaddress.
NOT_GLOBAL_YET_GLOBAL_TO_PYTHON = [
    "[fec0::1]",
    "[feff::1]",
    "192.0.0.8",
    "192.0.0.50",
    "192.0.0.200",
    "[3fff::1]",
]
METADATA = [
    "169.254.169.254",
    "[fd00:ec2::254]",
    "168.63.129.16",
    "[::ffff:169.254.169.254]",
    "[2002:a9fe:a9fe::]",
]
WIDE_EXEMPTIONS = ["0.0.0.0/0", "::/0", "169.254.0.0/16", "fd00::/8", "168.63.0.0/16", "2002::/16"]


@pytest.mark.usefixtures("guard_strict")
@pytest.mark.parametrize("host", NOT_GLOBAL_YET_GLOBAL_TO_PYTHON)
def test_special_purpose_ranges_python_calls_global_are_refused(host):
    assert addresses.check_url_literal(f"http://{host}/hook"), host


@pytest.mark.usefixtures("guard_strict")
@pytest.mark.parametrize("host", ["192.0.0.9", "192.0.0.10"])
def test_the_two_anycast_services_of_192_0_0_0_24_are_public(host):
    assert addresses.check_url_literal(f"http://{host}/hook") is None


@pytest.mark.django_db
@pytest.mark.usefixtures("guard_strict", "loopback_only_traffic")
@pytest.mark.parametrize("host", NOT_GLOBAL_YET_GLOBAL_TO_PYTHON)
def test_special_purpose_ranges_are_refused_before_connecting(tenant, host):
    result = send_attempt(make_task(tenant=tenant, url=f"http://{host}:8080/"), attempt=1)
    assert (result.outcome, result.retryable) == ("ssrf_blocked", False), result.error


@pytest.mark.parametrize("network", WIDE_EXEMPTIONS)
@pytest.mark.parametrize("host", METADATA)
def test_no_exemption_opens_a_metadata_address(callbacks_settings, network, host):
    callbacks_settings(ALLOWED_NETWORKS=[ipaddress.ip_network(network)], ALLOW_PRIVATE_NETWORKS=False)
    assert "cloud metadata address" in addresses.check_url_literal(f"http://{host}/latest/meta-data/")


def test_a_whole_address_family_exempts_everything_but_metadata(callbacks_settings):
    callbacks_settings(ALLOWED_NETWORKS=[ipaddress.ip_network("0.0.0.0/0")], ALLOW_PRIVATE_NETWORKS=False)
    assert addresses.check_url_literal("http://10.0.0.1/") is None
    assert addresses.check_url_literal("http://169.254.169.254/")


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_only_traffic")
def test_a_name_resolving_to_metadata_is_refused_whatever_is_exempt(tenant, monkeypatch, callbacks_settings):
    callbacks_settings(
        ALLOWED_NETWORKS=[ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")],
        ALLOW_PRIVATE_NETWORKS=False,
    )
    real = socket.getaddrinfo

    def metadata(host, port, *args, **kwargs):
        if host == "metadata.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", metadata)
    result = send_attempt(make_task(tenant=tenant, url="http://metadata.test/latest/meta-data/"), attempt=1)
    assert result.outcome == "ssrf_blocked"
    assert "metadata.test resolves to 169.254.169.254, which is a cloud metadata address" in result.error
