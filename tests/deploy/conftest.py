"""The end-to-end tests' real service processes, for the deployment files checked against them."""

from tests.e2e.conftest import service  # noqa: F401
