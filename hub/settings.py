"""One settings class: every knob has a default that works on a fresh machine."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub import PROJECT_ROOT
from hub.production_checks import (
    amqp_url_problem,
    base64_key_problem,
    public_url_problem,
    text_key_problem,
)

# Development placeholders. They make a fresh clone run, and are refused in production.
DEV_LEDGER_KEY = "dev-ledger-key-change-me"
DEV_TOKEN_KEY = "dev-token-signing-key-change-me-0123456789"
DEV_PAYLOAD_KEY = base64.b64encode(b"dev-payload-key-change-me-32byte").decode()
DEV_SIGNING_KEY = base64.b64encode(b"dev-ledger-signing-seed-32bytes!").decode()


class Settings(BaseSettings):
    """Hub configuration, read from `HUB_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'hub.sqlite3'}"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    broker_prefix: str = Field("lead", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    site_file: str = str(PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml")
    mapping_file: str = str(PROJECT_ROOT / "mappings" / "canonical.yaml")
    task_mapping_file: str = str(PROJECT_ROOT / "mappings" / "fhir-task.yaml")
    niem_mapping_dir: str = str(PROJECT_ROOT / "mappings" / "niem")
    public_url: str = "http://127.0.0.1:8000"

    ledger_key: str = DEV_LEDGER_KEY
    token_key: str = DEV_TOKEN_KEY
    payload_key: str = DEV_PAYLOAD_KEY
    ledger_signing_key: str = DEV_SIGNING_KEY  # Ed25519 seed, base64: signs checkpoints
    checkpoint_interval_seconds: int = Field(3600, ge=1)
    ledger_retention_days: int = Field(6 * 365 + 2, ge=1)  # 45 CFR 164.316(b)(2): six years
    token_ttl_seconds: int = 3600

    # Console sign-in limits (hub/console/login_limits.py); state is in the database.
    console_login_max_failures: int = Field(5, ge=1)  # consecutive, per username: then locked
    console_login_base_delay_seconds: float = Field(1.0, ge=0)  # doubles with each failure
    console_login_address_max_failures: int = Field(20, ge=1)  # per client address, per window
    console_login_address_window_seconds: int = Field(900, ge=1)
    console_login_forget_after_hours: float = Field(24, gt=0)  # unlocked usernames' failures

    prefetch: int = Field(64, ge=1, le=10_000)
    # at most this many messages a step handles as one unit (of what prefetch holds)
    step_batch: int = Field(64, ge=1, le=1_000)
    retry_delays_ms: list[int] = [1_000, 5_000, 30_000, 120_000, 600_000]
    push_timeout_seconds: float = 10.0
    validate_fhir_on_egress: bool = True

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_level: str = "INFO"

    # Request body caps in bytes, enforced before a body is read (hub/api/limits.py).
    # NIEM exchanges are verbose XML and may name several people; a FHIR Task is a few KB, but
    # EHRs may send it as XML with narrative and notes, so it gets the same room.
    max_body_submission_bytes: int = Field(1_000_000, ge=1_024)
    max_body_fhir_bytes: int = Field(1_000_000, ge=1_024)
    # A Consent is a few KB but may carry its signed form inline (base64 sourceAttachment.data);
    # 512 KB holds a one- or two-page scan, larger forms are linked by sourceAttachment.url.
    # Court orders and $revoke Parameters share it.
    max_body_consent_bytes: int = Field(512_000, ge=1_024)
    # /oauth/token, console forms, and any request whose endpoint reads no body.
    max_body_form_bytes: int = Field(16_000, ge=1_024)

    @property
    def max_attempts(self) -> int:
        """A delivery is tried once, then once per retry delay, then parked."""
        return len(self.retry_delays_ms) + 1

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> "Settings":
        if self.env == "production":
            keys = (
                ("HUB_LEDGER_KEY", self.ledger_key, DEV_LEDGER_KEY, text_key_problem),
                ("HUB_TOKEN_KEY", self.token_key, DEV_TOKEN_KEY, text_key_problem),
                ("HUB_PAYLOAD_KEY", self.payload_key, DEV_PAYLOAD_KEY, base64_key_problem),
                ("HUB_LEDGER_SIGNING_KEY", self.ledger_signing_key, DEV_SIGNING_KEY,
                 base64_key_problem),
            )
            # every problem in one message, so an operator fixes them in one go
            problems = [f"{name} still holds the development placeholder" if value == placeholder
                        else check(name, value) for name, value, placeholder, check in keys]
            problems += [amqp_url_problem("HUB_AMQP_URL", self.amqp_url),
                         public_url_problem("HUB_PUBLIC_URL", self.public_url)]
            found = [p for p in problems if p]
            if found:
                raise ValueError(f"HUB_ENV=production refuses this configuration: "
                                 f"{'; '.join(found)}")
        if len(base64.b64decode(self.payload_key)) != 32:
            raise ValueError("HUB_PAYLOAD_KEY must be 32 bytes, base64-encoded")
        if len(base64.b64decode(self.ledger_signing_key)) != 32:
            raise ValueError("HUB_LEDGER_SIGNING_KEY must be a 32-byte Ed25519 seed, base64")
        if not self.retry_delays_ms or any(d <= 0 for d in self.retry_delays_ms):
            raise ValueError("HUB_RETRY_DELAYS_MS must be a non-empty list of positive numbers")
        return self
