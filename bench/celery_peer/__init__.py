"""The Celery peer: the design a Django team would build instead of this service, measured beside
it by `make bench` (bench/origins.py).

Celery on the Redis broker, one task per callback calling `requests.post`, retries by Celery's
`autoretry_for`/`retry_backoff` (a countdown per retry), one row of a Django model written per
attempt, persistent database connections, and the worker tuned as Celery's documentation
recommends for many short tasks (settings.py says which setting and why). No limits of any kind:
no per-origin concurrency, no rate limits, no SSRF guard, no signatures, no status history.

It is its own minimal Django project (settings.py, one model without migrations: drive.py creates
its table in the benchmark's database), so nothing of it reaches the product's apps.
"""
