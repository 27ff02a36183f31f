"""OpenAPI descriptions that drf-spectacular cannot infer: the Bearer API-key scheme, strict input
serializers, the API's own description and tags, the headers every tenant operation answers with."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension


class TenantApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "callbacks.api.auth.TenantApiKeyAuthentication"
    name = "tenantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tc_...",
            "description": "A tenant API key: `Authorization: Bearer tc_...`.",
        }


class ThrottledBasicScheme(OpenApiAuthenticationExtension):
    """HTTP Basic as DRF's own, under the name drf-spectacular gives DRF's (its failures are throttled)."""

    target_class = "callbacks.api.auth.ThrottledBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A staff user's name and password; failed attempts are limited per address.",
        }


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Input serializers that refuse unknown fields say so in the schema."""

    target_class = "callbacks.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


API_DESCRIPTION = """\
Register HTTP callbacks to be delivered now, at a set time, or on a cron schedule; follow each attempt.

**Authentication.** Every request carries a tenant's API key: `Authorization: Bearer tc_...`. A missing or
invalid key is 401; a valid key on an operation it has no right to (the run-time settings) is 403. A tenant sees
only its own objects: another tenant's id is 404.

**Errors** have one shape: `{"error": {"code": "...", "message": "...", "fields": {...}}}`. 400 names each field
(or query parameter) at fault with the reason; unknown body fields and unknown query parameters are refused, not
ignored. 404 also answers every path under `/api/` that names no operation, 405 a method an operation does not
take, 409 a state conflict (or an `idempotency_key` reused with a different request), 413 a body over the limit,
429 a rate used up (with `Retry-After`).

**Paths** work with or without their trailing slash, for every method; the API never redirects.

**Rate limits** are per tenant. Every answer to a tenant's request carries `X-RateLimit-Limit` (requests per
window), `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the window ends; on a 429, until one more
request fits).

**Lists** are cursor-paginated, stable while rows are added: follow `next` until it is null; `page_size` up to 200.

**Statuses.** `scheduled`, `queued`, `running` and `retrying` are on their way. Final: `succeeded`; `failed`, an
answer that is not retried (a 3xx, a 4xx other than 408 and 429, a refused address); `dead`, retries used up on
errors that are retried (5xx, 408, 429, timeouts, connection errors); `cancelled`. Failed and dead callbacks can
be sent again (`retry`).

**Receivers** get the Standard Webhooks headers `webhook-id` (stable across retries: dedupe on it),
`webhook-timestamp` and `webhook-signature` when the tenant has a signing secret, plus `X-Callback-Task-Id`,
`X-Callback-Attempt`, `X-Business-Id`, `X-Trace-Id` and `traceparent`.
"""

# In the order a newcomer needs them.
TAGS = [
    {
        "name": "callbacks",
        "description": "Register callbacks, follow their attempts, cancel or send them again.",
    },
    {"name": "schedules", "description": "Cron schedules that create a callback at each fire."},
    {
        "name": "queues",
        "description": "The queues the tenant's callbacks wait in; purging its own waiting work.",
    },
    {
        "name": "whitelist",
        "description": "The target URLs the tenant may call, when an operator enforces it.",
    },
    {"name": "breakers", "description": "Circuit breakers of the origins the tenant calls."},
    {
        "name": "gone",
        "description": "URLs whose receiver answered 410 Gone: no longer called until cleared.",
    },
    {
        "name": "signing",
        "description": "How callbacks are signed (HMAC v1 or ed25519 v1a), the public keys, rotation.",
    },
    {
        "name": "tls",
        "description": "The tenant's TLS client certificate (mutual TLS) and private CAs for its receivers.",
    },
    {"name": "stats", "description": "Delivery statistics: throughput, latency, success rate, errors."},
    {"name": "audit", "description": "Every change made to the tenant's objects, and by whom."},
    {"name": "settings", "description": "Run-time delivery settings, for operators (staff users) only."},
]

RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "requests the tenant may make per window",
    "X-RateLimit-Remaining": "requests left in the window",
    "X-RateLimit-Reset": "seconds until the window ends (on a 429, until one more request fits)",
}
THROTTLED = {
    "description": "the tenant's rate is used up: wait Retry-After seconds",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def describe_api(result, generator, request, public):
    """drf-spectacular postprocessing: what the views cannot say about themselves, the API's description,
    its tags in order, and the rate-limit headers and 429 every tenant operation answers."""
    result["info"]["description"] = API_DESCRIPTION
    result["tags"] = TAGS
    headers = {
        name: {"description": description, "schema": {"type": "integer"}}
        for name, description in RATE_LIMIT_HEADERS.items()
    }
    for operations in result["paths"].values():
        for operation in operations.values():
            schemes = {name for scheme in operation.get("security", []) for name in scheme}
            if schemes != {"tenantApiKey"}:
                continue  # the operators' settings: staff users are not rate-limited
            operation["responses"].setdefault("429", THROTTLED)
            for answer in operation["responses"].values():
                answer.setdefault("headers", {}).update(headers)
    return result
