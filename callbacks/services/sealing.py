"""Sealing every sealed value again with the first of CALLBACKS_ENCRYPTION_KEYS (key rotation)."""

from django.db import transaction

from callbacks.sealing import sealed_fields


def sealed_values_reseal() -> int:
    """Seal every stored secret with the first key; returns how many values were sealed again.

    Each value is read through its field (opened with whichever key sealed it) and written back
    (sealed with the first key), one row at a time, so processes keep working throughout.
    """
    count = 0
    for model, name in sealed_fields():
        rows = model.objects.exclude(**{name: ""}).exclude(**{f"{name}__isnull": True})
        for pk, value in rows.values_list("pk", name).iterator():
            with transaction.atomic():
                model.objects.filter(pk=pk).update(**{name: value})
            count += 1
    return count
