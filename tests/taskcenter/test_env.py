"""taskcenter.env: secrets from NAME or NAME_FILE, read strictly; the proxy's HTTPS header."""

import base64

import pytest
from cryptography.fernet import Fernet

from taskcenter.env import ConfigError, env_fernet_keys, env_proxy_ssl_header, env_secret, is_fernet_key


def test_a_secret_comes_from_its_file_without_the_trailing_newline(monkeypatch, tmp_path):
    path = tmp_path / "secret"
    path.write_text("s3cret value\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(path))
    monkeypatch.delenv("SOME_SECRET", raising=False)
    assert env_secret("SOME_SECRET", "default") == "s3cret value"


def test_a_secret_in_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv("SOME_SECRET_FILE", raising=False)
    monkeypatch.delenv("SOME_SECRET", raising=False)
    assert env_secret("SOME_SECRET", "default") == "default"
    monkeypatch.setenv("SOME_SECRET", "given")
    assert env_secret("SOME_SECRET", "default") == "given"


def test_both_the_variable_and_its_file_is_an_error(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("one")
    monkeypatch.setenv("SOME_SECRET", "other")
    monkeypatch.setenv("SOME_SECRET_FILE", str(tmp_path / "secret"))
    with pytest.raises(ConfigError, match="SOME_SECRET and SOME_SECRET_FILE are both set"):
        env_secret("SOME_SECRET", "")


@pytest.mark.parametrize(
    "content, reason",
    [(None, "cannot be read: No such file or directory"), ("\n", "is empty"), (b"\xff\xfe", "not UTF-8")],
)
def test_a_secret_file_that_cannot_be_used_stops_start_up(monkeypatch, tmp_path, content, reason):
    path = tmp_path / "secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    monkeypatch.delenv("SOME_SECRET", raising=False)
    monkeypatch.setenv("SOME_SECRET_FILE", str(path))
    with pytest.raises(ConfigError, match=f"SOME_SECRET_FILE='{path}'.*{reason}"):
        env_secret("SOME_SECRET", "")


def test_encryption_keys_from_a_file_are_checked_like_the_variable(monkeypatch, tmp_path):
    path = tmp_path / "keys"
    path.write_text("not-a-key\n")
    monkeypatch.delenv("CALLBACKS_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("CALLBACKS_ENCRYPTION_KEYS_FILE", str(path))
    with pytest.raises(ConfigError, match="key 1 is not a Fernet key"):
        env_fernet_keys("CALLBACKS_ENCRYPTION_KEYS")


def test_the_proxy_header_is_opt_in_and_a_header_name(monkeypatch):
    monkeypatch.delenv("SECURE_PROXY_SSL_HEADER", raising=False)
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") is None
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")
    with pytest.raises(ConfigError, match="is not a header name"):
        env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")


@pytest.mark.parametrize(
    "key",
    [
        base64.urlsafe_b64encode(bytes(range(32))).decode(),
        base64.urlsafe_b64encode(bytes(range(200, 232))).decode(),  # "-" and "_": url-safe
        base64.urlsafe_b64encode(bytes(31)).decode(),
        base64.urlsafe_b64encode(bytes(33)).decode(),
        base64.b64encode(bytes([251] * 32)).decode(),  # "+" and "/": standard, not url-safe, base64
        base64.urlsafe_b64encode(bytes(range(32))).decode()[:-1],
        "not-a-key",
        "",
        "é" * 44,
    ],
)
def test_a_fernet_key_is_what_fernet_takes(key):
    try:
        Fernet(key.encode())
        taken = True
    except (ValueError, TypeError):
        taken = False
    assert is_fernet_key(key) is taken
