"""hub.logs: JSON logs that let only allow-listed keys through, so no PHI is ever written."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from hub.logs import REDACTED, SAFE_KEYS, configure, strip_phi


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure("INFO", out)
    yield out
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_strip_phi_redacts_unknown_keys() -> None:
    """Values of keys outside SAFE_KEYS are replaced by "[redacted]"."""
    event = {"event": "received", "name": "Jane Doe", "date_of_birth": "1980-02-03"}
    out = strip_phi(None, "info", event)
    assert out["name"] == REDACTED and out["date_of_birth"] == REDACTED


def test_strip_phi_keeps_safe_keys() -> None:
    """Values of allow-listed keys pass unchanged."""
    event = {"event": "pushed", "delivery_id": "d-1", "recipient": "da", "http_status": 202}
    assert strip_phi(None, "info", dict(event)) == event


def test_strip_phi_keeps_the_keys_themselves() -> None:
    """Redaction replaces values but keeps the key, so a reader sees something was there."""
    out = strip_phi(None, "info", {"event": "x", "ssn": "000-00-0000"})
    assert set(out) == {"event", "ssn"}


def test_safe_keys_hold_no_obvious_phi_names() -> None:
    """The allow-list does not include person-describing keys."""
    assert not {"name", "given_name", "family_name", "date_of_birth", "phone", "address",
                "body", "person", "value"} & SAFE_KEYS


def test_configured_logger_never_writes_phi(stream: io.StringIO) -> None:
    """A log call with name="Jane Doe" writes JSON without "Jane Doe"."""
    structlog.get_logger("test").info("received", name="Jane Doe", delivery_id="d-1")
    text = stream.getvalue()
    assert "Jane Doe" not in text
    [record] = lines(stream)
    assert record["name"] == REDACTED
    assert record["delivery_id"] == "d-1"
    assert record["event"] == "received"
    assert record["level"] == "info"


def test_bound_context_is_redacted_too(stream: io.StringIO) -> None:
    """PHI bound through contextvars is redacted like a call's own keys."""
    with structlog.contextvars.bound_contextvars(date_of_birth="1980-02-03", message_id="m-1"):
        structlog.get_logger("test").warning("kept")
    assert "1980-02-03" not in stream.getvalue()
    [record] = lines(stream)
    assert record["message_id"] == "m-1"


def test_configured_level_filters_lower_levels() -> None:
    """configure("WARNING") drops info events."""
    out = io.StringIO()
    configure("WARNING", out)
    try:
        structlog.get_logger("test").info("quiet")
        structlog.get_logger("test").warning("loud")
    finally:
        structlog.reset_defaults()
    assert [r["event"] for r in lines(out)] == ["loud"]
