"""The apps' admin modules are loaded by the URLconf and by the admin's checks, not when Django starts:
the processes that serve no page (run_dispatcher, qcluster) never import them, nor what only the
console's pages use (the HTTP client of the test callback, in the dispatcher)."""

import pytest

from tests.processes import modules_loaded


@pytest.mark.django_db
def test_the_dispatcher_imports_neither_the_admin_modules_nor_the_http_client(tmp_path):
    # As run_dispatcher starts: its command, its start-up checks, then one dispatcher made.
    code = (
        "from django.core.management import get_commands, load_command_class\n"
        "command = load_command_class(get_commands()['run_dispatcher'], 'run_dispatcher')\n"
        "command.check(tags=command.requires_system_checks)\n"
        "from callbacks.delivery.dispatcher import Dispatcher\n"
        "Dispatcher()\n"
    )
    names = (
        "callbacks.admin",
        "portal.admin",
        "requests",
        "urllib3",
        "h2",
        "callbacks.delivery.executor",
        "cryptography.hazmat.bindings._rust",  # several MB it never uses: keys and certificates are the web's
    )
    assert modules_loaded(tmp_path, code, names) == []


@pytest.mark.django_db
def test_the_cluster_loads_the_delivery_engine_but_not_the_admin_modules(tmp_path):
    code = (
        "from django.core.management import get_commands, load_command_class\n"
        "command = load_command_class(get_commands()['qcluster'], 'qcluster')\n"
        "command.check(tags=command.requires_system_checks)\n"
    )
    names = ("callbacks.admin", "portal.admin", "requests", "callbacks.delivery.executor")
    assert modules_loaded(tmp_path, code, names) == ["requests", "callbacks.delivery.executor"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "code",
    ["import taskcenter.urls", "from django.core import checks\nchecks.run_checks(tags=['admin'])"],
    ids=["the URLconf", "the admin's checks"],
)
def test_the_urlconf_and_the_admin_checks_register_every_admin(tmp_path, code):
    code += (
        "\nfrom django.contrib import admin\n"
        "from callbacks.models import CallbackTask\n"
        "from portal.models import PortalLink\n"
        "assert admin.site.is_registered(CallbackTask) and admin.site.is_registered(PortalLink)\n"
    )
    assert modules_loaded(tmp_path, code, ("callbacks.admin", "portal.admin")) == [
        "callbacks.admin",
        "portal.admin",
    ]
