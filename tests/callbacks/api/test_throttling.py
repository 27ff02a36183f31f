"""Per-tenant API rate limits: 429 with Retry-After, per tenant, changes apply at once, shared through
the Django cache (the file cache here, Redis when REDIS_URL is set)."""

import uuid

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings

from callbacks.api.throttling import consume
from callbacks.domain.rates import Rate, RateError, parse_rate
from callbacks.services.tenants import tenant_update_policy

LIST = "/api/v1/callbacks/"
REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/15",
    }
}


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/s", Rate(100, 1)),
        ("3000/min", Rate(3000, 60)),
        ("3000/m", Rate(3000, 60)),
        ("50000/h", Rate(50000, 3600)),
        (" 7 / Hour ", Rate(7, 3600)),
        ("9/day", Rate(9, 86400)),
        ("off", None),
        ("0", None),
        ("0/s", None),
    ],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "100/fortnight", "-1/s", "1.5/s", "many/min", None])
def test_bad_rates(text):
    with pytest.raises(RateError):
        parse_rate(text)


def limit(tenant, rate):
    tenant_update_policy(tenant=tenant, data={"api_rate_limit": rate}, actor_type="user", actor="test")


def test_429_with_retry_after_once_the_rate_is_used(api, tenant):
    limit(tenant, "3/min")
    assert [api.get(LIST).status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get(LIST)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    # The previous minute's requests are taken as spread over it, so the wait may pass the minute a little.
    assert 1 <= int(refused["Retry-After"]) <= 120
    # Every endpoint of the tenant shares the budget.
    assert api.post(LIST, {"url": "https://example.com/"}, format="json").status_code == 429


def test_another_tenant_is_unaffected(api, tenant, other_api):
    limit(tenant, "1/min")
    api.get(LIST)
    assert api.get(LIST).status_code == 429
    assert [other_api.get(LIST).status_code for _ in range(5)] == [200] * 5


def test_a_changed_limit_applies_at_once(api, tenant):
    limit(tenant, "2/min")
    api.get(LIST), api.get(LIST)
    assert api.get(LIST).status_code == 429
    limit(tenant, "4/min")
    assert [api.get(LIST).status_code for _ in range(3)] == [200, 200, 429]
    limit(tenant, "off")
    assert [api.get(LIST).status_code for _ in range(5)] == [200] * 5


def test_the_installation_default_applies_without_a_tenant_rate(api, tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "API_RATE_LIMIT": "2/min"}
    assert [api.get(LIST).status_code for _ in range(3)] == [200, 200, 429]
    settings.CALLBACKS = {**settings.CALLBACKS, "API_RATE_LIMIT": "off"}
    assert api.get(LIST).status_code == 200


def test_a_batch_counts_as_one_request(api, tenant):
    limit(tenant, "2/min")
    batch = {"callbacks": [{"url": f"https://example.com/{n}"} for n in range(50)]}
    assert api.post(f"{LIST}batch/", batch, format="json").status_code == 201
    assert api.get(LIST).status_code == 200
    assert api.get(LIST).status_code == 429


def test_refused_requests_are_not_counted_and_the_window_slides():
    key, rate = f"test:{uuid.uuid4()}", Rate(requests=10, seconds=60)
    start = 6000.0  # the start of a window
    assert all(consume(key, rate, now=start + 1) is None for _ in range(10))
    wait = consume(key, rate, now=start + 1)
    assert wait == pytest.approx(59 + 60 * (1 - 9 / 10))  # this window, then 10% of the next
    for _ in range(20):
        consume(key, rate, now=start + 2)  # hammering while refused
    # Half-way through the next window half of the previous ten still count: five more fit, not ten.
    allowed = [consume(key, rate, now=start + 90) is None for _ in range(10)]
    assert allowed == [True] * 5 + [False] * 5
    # A window later, only the five of that window weigh (half of them, by then).
    assert sum(consume(key, rate, now=start + 150) is None for _ in range(10)) == 7


def test_retry_after_is_honest():
    key, rate = f"test:{uuid.uuid4()}", Rate(requests=4, seconds=10)
    for _ in range(4):
        consume(key, rate, now=100.0)
    wait = consume(key, rate, now=100.0)
    assert wait is not None
    assert consume(key, rate, now=100.0 + wait - 0.01) is not None
    assert consume(key, rate, now=100.0 + wait + 0.01) is None


@pytest.fixture
def redis_cache():
    with override_settings(CACHES=REDIS):
        cache.clear()  # test database 15 only
        yield cache
        cache.clear()


def test_counts_live_in_redis_when_configured(api, tenant, redis_cache):
    limit(tenant, "2/min")
    assert [api.get(LIST).status_code for _ in range(3)] == [200, 200, 429]
    backend = caches["default"]
    assert isinstance(backend, RedisCache)
    client = backend._cache.get_client()
    keys = [key.decode() for key in client.keys(f"*throttle:tenant:{tenant.pk}:*")]
    assert keys, "no throttle counter in Redis"
    assert int(client.get(keys[0])) == 2


def test_unknown_api_keys_are_throttled_per_address(new_tenant, settings):
    from rest_framework.test import APIClient

    settings.CALLBACKS = {**settings.CALLBACKS, "AUTH_FAILURE_RATE": "5/min"}

    def call(key, address="127.0.0.1"):
        return APIClient().get(LIST, HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address)

    assert [call(f"tc_guess{n}").status_code for n in range(5)] == [401] * 5
    refused = call("tc_guess5")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert call(new_tenant.api_key).status_code == 429  # the address is throttled, whatever it sends
    assert call(new_tenant.api_key, address="192.0.2.9").status_code == 200
    assert call("tc_guess6", address="192.0.2.9").status_code == 401


def test_a_forged_forwarded_for_does_not_escape_the_failure_count(db, settings):
    from rest_framework.test import APIClient

    settings.CALLBACKS = {**settings.CALLBACKS, "AUTH_FAILURE_RATE": "3/min"}
    statuses = [
        APIClient().get(LIST, HTTP_AUTHORIZATION="Bearer tc_guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(4)
    ]
    assert [response.status_code for response in statuses] == [401, 401, 401, 429]


def test_failures_split_by_a_window_edge_are_counted_whole():
    from callbacks.api.throttling import over_rate

    key = f"test:edge:{uuid.uuid4().hex}"
    rate = Rate(5, 60)
    index = 1000
    cache.set(f"{key}:{index - 1}", 3)  # three failures at the end of the previous minute
    cache.set(f"{key}:{index}", 2)  # two just after the edge
    assert over_rate(key, rate, now=index * 60 + 0.5) is not None
    assert over_rate(key, Rate(6, 60), now=index * 60 + 0.5) is None
    # Once the previous minute has slid out of the window, only this minute's two count.
    assert over_rate(key, rate, now=index * 60 + 59.9) is None
