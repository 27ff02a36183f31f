"""manage.py reseal_secrets: seal every stored private key with the first CALLBACKS_ENCRYPTION_KEYS key."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.services.sealing import sealed_values_reseal


class Command(BaseCommand):
    help = (
        "Seal every secret the service stores encrypted with the first key of CALLBACKS_ENCRYPTION_KEYS. "
        "Rotate a key by putting the new one first, keeping the old one after it, running this, then "
        "removing the old one."
    )

    def handle(self, *args, **options):
        count, unopened = sealed_values_reseal()
        self.stdout.write(f"{count} sealed value(s) now sealed with the first key.")
        if unopened:
            for item in unopened:
                self.stderr.write(f"not opened by any key: {item.model} {item.pk} {item.field}")
            raise CommandError(
                f"{len(unopened)} value(s) no key in CALLBACKS_ENCRYPTION_KEYS opens were left as they were: "
                "add the key that sealed them and run this again"
            )
