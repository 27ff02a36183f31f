"""What a leaked private key would look like in a page, an answer, a log or a column."""

import base64

from callbacks import keys


def private_texts(*private_keys: str) -> list[str]:
    """Each key whole, its base64 without the prefix, a slice of it, and its raw bytes in hex."""
    found = []
    for key in private_keys:
        encoded = key.removeprefix(keys.SIGNING_PRIVATE_KEY_PREFIX)
        found += [key, encoded, encoded[:16], base64.b64decode(encoded).hex()]
    return found
