"""Strict readers for environment variables.

A typo in a deployment's environment must stop start-up with a message that names the
variable, never fall back silently to a default (healthchecks' settings habit).
"""

import ipaddress
import os
import re

from callbacks.domain.bounds import Bound
from callbacks.domain.rates import RateError, parse_rate


class ConfigError(Exception):
    """A setting read from the environment has a value we cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


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
    raw = os.environ.get(name)
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


def env_fernet_keys(name: str) -> list[str]:
    """A comma-separated list of Fernet keys (callbacks.sealing); the first seals, all open."""
    from cryptography.fernet import Fernet

    keys = env_list(name, [])
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one "
                "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
    return keys
