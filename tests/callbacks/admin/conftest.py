"""Admin tests: a logged-in superuser's client (every test starts from an empty cache: tests/conftest.py)."""
