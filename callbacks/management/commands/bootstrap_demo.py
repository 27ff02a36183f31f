"""`make run`'s set-up: an admin login and a demo tenant, printed so the README's curl works and the first
callback's signature can be checked (the demo tenant's signing secret is printed beside its API key).

The credentials are kept in var/demo_credentials.json (a local demo, not production) so
that every `make run` prints the same ones.
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from callbacks import selectors
from callbacks.models import Tenant
from callbacks.services.tenants import api_key_create, tenant_create

DEMO_TENANT = "demo"


class Command(BaseCommand):
    help = "Create (once) an admin login and a demo tenant, and print their credentials."

    def handle(self, *args, **options):
        path = settings.VAR_DIR / "demo_credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}

        User = get_user_model()
        password = saved.get("admin_password") or secrets.token_urlsafe(12)
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            User.objects.create_superuser("admin", "admin@example.com", password)
        elif not admin.check_password(password):
            password = "(unchanged: set with `manage.py changepassword admin`)"

        tenant = Tenant.objects.filter(name=DEMO_TENANT).first()
        api_key = saved.get("api_key")
        if tenant is None:
            created = tenant_create(name=DEMO_TENANT)
            tenant, api_key = created.tenant, created.api_key
        elif not api_key or selectors.api_key_lookup(key=api_key) is None:
            api_key = api_key_create(tenant=tenant)

        path.write_text(json.dumps({"admin_password": password, "api_key": api_key}))
        path.chmod(0o600)
        self.stdout.write("Admin login:     admin / " + password)
        self.stdout.write("Demo API key:    " + api_key)
        self.stdout.write("Signing secret:  " + (tenant.signing_secret or "(none: callbacks go unsigned)"))
        self.stdout.write(f"  export TC_KEY={api_key}")
        if tenant.signing_secret:
            self.stdout.write(f"  export TC_SECRET={tenant.signing_secret}")
