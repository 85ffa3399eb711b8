"""Keyed hashes for the ledger and identity matching; authenticated encryption for payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import PermanentError


class Hasher:
    """HMAC-SHA256 of values: proves what was sent without keeping a copy of it."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def of(self, value: Any) -> str:
        data = value if isinstance(value, bytes) else orjson.dumps(value)
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()


class Sealer:
    """AES-256-GCM for payloads at rest (database) and in flight on the broker."""

    def __init__(self, key_b64: str) -> None:
        self._aead = AESGCM(base64.b64decode(key_b64))

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], None)
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise PermanentError("payload cannot be decrypted with the configured key") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
