"""Strict readers for environment variables.

A typo in a deployment's environment must stop start-up with a message that names the
variable, never fall back silently to a default (healthchecks' settings habit).
"""

import base64
import ipaddress
import os
import re
from pathlib import Path

from callbacks.domain.bounds import Bound
from callbacks.domain.rates import RateError, parse_rate


class ConfigError(Exception):
    """A setting read from the environment has a value we cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_secret(name: str, default: str) -> str:
    """NAME, or the contents of the file that NAME_FILE names (a secret kept out of the environment:
    a systemd credential, a mounted secret, a file only the service's user can read).

    Both set is an error rather than a silent choice; so is a file that cannot be read or is empty.
    Surrounding whitespace is dropped: editors and `echo` end a file with a newline.
    """
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return default if value is None else value
    if value:
        raise ConfigError(f"{name} and {name}_FILE are both set: set one of them")
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{name}_FILE={path!r} cannot be read: {reason}") from None
    if not text:
        raise ConfigError(f"{name}_FILE={path!r} is empty")
    return text


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use one of: true, false, 1, 0, yes, no, on, off)")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, whatever its case (upper-cased as the choices are), or the default when unset."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(choices)}")
    return value


def env_number(name: str, default, bound: Bound):
    """A number within `bound` (callbacks.domain.bounds), or the default when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return bound.clean(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    return _split(os.environ.get(name), default)


def _split(raw: str | None, default: list[str]) -> list[str]:
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a CIDR network (e.g. 10.1.0.0/16)") from None
    return networks


def env_regexes(name: str) -> list[str]:
    """Comma-separated regular expressions, each compiled once here so a bad one stops start-up."""
    patterns = env_list(name, [])
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{name}: {pattern!r} is not a regular expression: {exc}") from None
    return patterns


def env_rate(name: str, default: str) -> str:
    """A rate like "100/s", "3000/min", "50000/h", or "off"/"0" (callbacks.domain.rates)."""
    raw = env_str(name, default).strip()
    try:
        parse_rate(raw)
    except RateError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return raw


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """The header a TLS-terminating proxy sets to "https" (e.g. X-Forwarded-Proto), as Django's
    SECURE_PROXY_SSL_HEADER; None when unset. Only ever set behind a proxy that overwrites the header:
    a client could otherwise claim HTTPS."""
    raw = env_str(name, "").strip()
    if not raw:
        return None
    if not _HEADER_NAME.fullmatch(raw):
        raise ConfigError(f"{name}={raw!r} is not a header name (e.g. X-Forwarded-Proto)")
    return ("HTTP_" + raw.upper().replace("-", "_"), "https")


_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def env_fernet_keys(name: str) -> list[str]:
    """A comma-separated list of Fernet keys (callbacks.sealing); the first seals, all open."""
    keys = _split(env_secret(name, ""), [])
    for position, key in enumerate(keys, start=1):
        if not is_fernet_key(key):
            raise ConfigError(
                f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one "
                "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
    return keys


def is_fernet_key(key: str) -> bool:
    """What cryptography's Fernet(key) accepts: 32 bytes in url-safe base64. Checked without it: the
    library's bindings cost megabytes in every process that reads the settings, and most of them (the
    dispatcher) never open a sealed value."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
        return False
