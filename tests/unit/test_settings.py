"""hub.settings.Settings: defaults that run, and refusal of placeholder secrets in production."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from hub.banner import banner, development_key_warning
from hub.bootstrap import Hub
from hub.settings import DEV_PAYLOAD_KEY, Settings

REAL = {
    "ledger_key": "a-real-ledger-key-from-the-vault",
    "token_key": "a-real-token-signing-key-from-the-vault-0123",
    "payload_key": base64.b64encode(bytes(range(32))).decode(),
    "ledger_signing_key": base64.b64encode(bytes(range(100, 132))).decode(),
    "amqp_url": "amqp://lead-hub:a-broker-password@rabbit.internal:5672/%2F",
    "public_url": "https://hub.lead.example",
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


def _refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as info:
        settings(env="production", **{**REAL, **values})
    return str(info.value)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("ledger_key", "x7Qp2-short-ledger-key", "HUB_LEDGER_KEY is 22 characters"),
    ("token_key", "k" * 40, "HUB_TOKEN_KEY repeats 1 distinct characters"),
    ("token_key", "abcabcabcabcabcabcabcabcabcabcabcabc", "HUB_TOKEN_KEY repeats 3"),
    ("payload_key", base64.b64encode(b"R" * 32).decode(), "HUB_PAYLOAD_KEY repeats 1"),
    ("ledger_signing_key", base64.b64encode(b"S" * 16).decode(),
     "HUB_LEDGER_SIGNING_KEY decodes to 16 bytes"),
    ("amqp_url", "amqp://guest:guest@rabbit.internal:5672/%2F", "HUB_AMQP_URL uses RabbitMQ's"),
    ("amqp_url", "amqp://rabbit.internal:5672/%2F", "guest:guest"),
    ("public_url", "http://hub.lead.example", "HUB_PUBLIC_URL is 'http://hub.lead.example'"),
])
def test_production_refuses_a_weak_secret_or_plain_url(field: str, value: str, says: str) -> None:
    """Each weak key, the guest broker account and plain HTTP are refused, naming the variable."""
    assert says in _refusal(**{field: value})


def test_production_names_every_problem_in_one_message() -> None:
    """Several problems at once are all listed in the one refusal."""
    message = _refusal(ledger_key="short", token_key="t" * 64,
                       amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F",
                       public_url="http://127.0.0.1:8000")
    for name in ("HUB_LEDGER_KEY", "HUB_TOKEN_KEY", "HUB_AMQP_URL", "HUB_PUBLIC_URL"):
        assert name in message
    assert message.count("HUB_ENV=production refuses") == 1


def test_development_accepts_what_production_refuses() -> None:
    """Development keeps working with the guest broker, plain HTTP and short keys."""
    s = settings(ledger_key="short", amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F")
    assert s.env == "development"


def test_development_warns_that_the_token_key_is_public() -> None:
    """`hub serve` in development says in one line that tokens can be forged; production not."""
    warning = development_key_warning(settings())
    assert warning is not None and "\n" not in warning
    assert "development key" in warning and "never face a network" in warning
    fake = cast(Hub, SimpleNamespace(settings=settings(), site=SimpleNamespace(
        site="santa-fe", name="Santa Fe", stand_ins={})))
    assert warning in banner(fake, "ingest x1").splitlines()
    assert development_key_warning(settings(env="production", **REAL)) is None
    assert development_key_warning(settings(token_key=REAL["token_key"])) is None
