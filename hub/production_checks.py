"""What HUB_ENV=production refuses besides placeholders: weak keys, guest broker, plain HTTP.

Each check returns a sentence naming the variable and the problem, or None, so that
Settings can refuse a configuration with every problem listed in one message.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote, urlsplit

KEY_BYTES = 32  # 256 bits: HMAC-SHA256 and AES-256 keys, the Ed25519 seed
# A key of 32 random characters or bytes almost never has fewer than 8 distinct ones
# (hex: about 1 in 10^8); 'aaaa...' or a short word repeated does. Not an entropy measure,
# only a catch for keys typed by hand.
MIN_DISTINCT = 8


def text_key_problem(name: str, value: str) -> str | None:
    """An HMAC key given as text: at least 32 characters, not a repeat of a few."""
    if len(value) < KEY_BYTES:
        return f"{name} is {len(value)} characters; use at least {KEY_BYTES} random ones"
    if len(set(value)) < MIN_DISTINCT:
        return (f"{name} repeats {len(set(value))} distinct characters; use a random key "
                f"(e.g. `openssl rand -hex {KEY_BYTES}`)")
    return None


def base64_key_problem(name: str, value: str) -> str | None:
    """A key given as base64: exactly 32 bytes, not a repeat of a few byte values."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{name} is not base64"
    if len(key) != KEY_BYTES:
        return f"{name} decodes to {len(key)} bytes; it must be {KEY_BYTES}"
    if len(set(key)) < MIN_DISTINCT:
        return (f"{name} repeats {len(set(key))} distinct byte values; use a random key "
                f"(e.g. `openssl rand -base64 {KEY_BYTES}`)")
    return None


def amqp_url_problem(name: str, url: str) -> str | None:
    """RabbitMQ's default account (guest:guest, also what pika uses when a URL has none)."""
    parts = urlsplit(url)
    given = parts.username is not None or parts.password is not None
    user = unquote(parts.username or "") if given else "guest"
    password = unquote(parts.password or "") if given else "guest"
    if user == "guest" and password == "guest":
        return (f"{name} uses RabbitMQ's default guest:guest credentials; create a user "
                "for the hub and give it in the URL")
    return None


def public_url_problem(name: str, url: str) -> str | None:
    """The hub's address for partners and the console must be HTTPS in production."""
    if urlsplit(url).scheme.lower() != "https":
        return f"{name} is {url!r}; partners and the console must reach the hub over https://"
    return None
