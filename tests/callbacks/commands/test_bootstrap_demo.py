"""manage.py bootstrap_demo (`make run`): the demo tenant's API key and signing secret, printed with the lines
to paste, the same at every run."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from callbacks.models import Tenant

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


def test_prints_the_signing_secret_beside_the_api_key(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = bootstrap()
    secret = Tenant.objects.get(name="demo").signing_secret
    assert re.search(rf"^Signing secret:\s+{re.escape(secret)}$", first, flags=re.M)
    assert f"  export TC_SECRET={secret}\n" in first
    assert re.search(r"^  export TC_KEY=tc_\S+$", first, flags=re.M)
    assert bootstrap() == first  # every `make run` prints the same credentials
