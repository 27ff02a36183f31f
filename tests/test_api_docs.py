"""The API docs page works without the internet: its JavaScript is served by the service itself."""

import re


def test_docs_page_loads_its_script_from_our_own_static_files(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.content.decode())
    assert scripts, "the docs page has no script"
    for src in scripts:
        assert src.startswith("/static/"), f"{src} would be fetched from outside the service"
        assert client.get(src).status_code == 200


def test_schema_is_served_without_a_key(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content[:200]
