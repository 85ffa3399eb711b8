"""hub.settings.Settings: defaults that run, and refusal of placeholder secrets in production."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hub.settings import DEV_PAYLOAD_KEY, Settings

REAL = {
    "ledger_key": "a-real-ledger-key-from-the-vault",
    "token_key": "a-real-token-signing-key-from-the-vault-0123",
    "payload_key": base64.b64encode(b"R" * 32).decode(),
    "ledger_signing_key": base64.b64encode(b"S" * 32).decode(),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No HUB_* variable or .env file of the machine leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_development_defaults_load() -> None:
    """With nothing set, the development defaults are accepted."""
    s = settings()
    assert s.env == "development"
    assert s.payload_key == DEV_PAYLOAD_KEY
    assert s.max_attempts == len(s.retry_delays_ms) + 1


def test_production_with_placeholders_names_every_secret() -> None:
    """Production with the dev placeholders is refused, naming each placeholder variable."""
    with pytest.raises(ValidationError) as info:
        settings(env="production")
    message = str(info.value)
    for name in ("HUB_LEDGER_KEY", "HUB_TOKEN_KEY", "HUB_PAYLOAD_KEY", "HUB_LEDGER_SIGNING_KEY"):
        assert name in message


def test_production_names_only_the_placeholder_left() -> None:
    """With two real secrets, only the remaining placeholder is named."""
    with pytest.raises(ValidationError) as info:
        settings(env="production", ledger_key=REAL["ledger_key"], token_key=REAL["token_key"])
    message = str(info.value)
    assert "HUB_PAYLOAD_KEY" in message
    assert "HUB_LEDGER_KEY" not in message and "HUB_TOKEN_KEY" not in message


def test_production_from_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """HUB_ENV=production in the environment triggers the same refusal."""
    monkeypatch.setenv("HUB_ENV", "production")
    monkeypatch.setenv("HUB_LEDGER_KEY", REAL["ledger_key"])
    with pytest.raises(ValidationError, match="HUB_TOKEN_KEY"):
        settings()


def test_production_with_real_secrets_loads() -> None:
    """Production with real secrets is accepted."""
    assert settings(env="production", **REAL).env == "production"


@pytest.mark.parametrize("size", [16, 31, 33, 64])
def test_payload_key_must_be_32_bytes(size: int) -> None:
    """A payload key that does not decode to 32 bytes is refused."""
    with pytest.raises(ValidationError, match="32 bytes"):
        settings(payload_key=base64.b64encode(b"k" * size).decode())


def test_payload_key_must_be_base64() -> None:
    """A payload key that is not base64 is refused."""
    with pytest.raises(ValidationError):
        settings(payload_key="not base64 !!")


@pytest.mark.parametrize("delays", [[], [1000, 0], [-5]])
def test_retry_delays_must_be_positive_and_non_empty(delays: list[int]) -> None:
    """An empty list or a non-positive delay is refused."""
    with pytest.raises(ValidationError, match="HUB_RETRY_DELAYS_MS"):
        settings(retry_delays_ms=delays)
