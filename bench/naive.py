"""The naive design the benchmark compares against: one django-q2 task per callback, calling
requests.post, with django-q2's ORM broker and Django's default connection handling
(a new database connection per broker operation)."""

import requests


def send(url: str) -> int:
    return requests.post(url, json={"hello": "world"}, timeout=(10, 30)).status_code
