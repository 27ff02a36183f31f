"""Host names as the service compares, keys and sends them: one normalisation for all.

The whitelist matches a target's host, the per-origin limits, lanes and breakers key on its origin,
and the sender connects to it and names it in Host and SNI. If any of them spelt a host differently,
a whitelist entry could admit a host that is then sent elsewhere (IDNA 2003 maps ``straße`` to
``strasse``, UTS 46 non-transitional, as browsers and requests read it, to ``xn--strae-oqa``), and
one receiver could count as several origins (``host.``, ``HOST``, ``xn--bcher-kva`` and ``bücher``),
splitting its limits and its breaker. So each of them takes `normalise_host`:

- the UTS 46 mapping, non-transitional (``ß`` stays ``ß``; full-width letters and dots become ASCII;
  letters become lower case), then each label that is not ASCII in its ``xn--`` form;
- one trailing dot removed (``example.com.`` is ``example.com``).

ASCII labels are taken as they are after the mapping: underscores, which internal names carry and
resolvers accept, are no IDNA 2008 letters, and an ASCII name never needed IDNA.
"""

import re

import idna

# DNS labels; underscores too, which internal names carry and HTTP clients resolve anyway. Single-label
# names are fine: internal receivers ("http://billing:8080/hook") are a main use.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def normalise_host(name: str) -> str:
    """The host name in the one form the service uses; ValueError when it is not a host name."""
    invalid = ValueError("not a valid host name")
    if not isinstance(name, str) or not name:
        raise invalid
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        raise invalid from None
    if mapped.endswith("."):
        mapped = mapped[:-1]
    if re.fullmatch(r"[0-9.]+", mapped):
        raise ValueError("not a valid IPv4 address")
    try:
        labels = [
            label if label.isascii() else idna.alabel(label).decode("ascii") for label in mapped.split(".")
        ]
    except (idna.IDNAError, UnicodeError):
        raise invalid from None
    normalised = ".".join(labels)
    if len(normalised) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise invalid
    return normalised
