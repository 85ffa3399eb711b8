"""hub.crypto: AES-GCM sealing of payloads and keyed hashes for the ledger."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from hub.crypto import Hasher, Sealer, sha256_hex
from hub.errors import PermanentError

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()
PLAINTEXT = b'{"person": {"given_name": "Jane"}}'


def test_sealer_round_trips() -> None:
    """open(seal(x)) gives x back."""
    sealer = Sealer(KEY)
    assert sealer.open(sealer.seal(PLAINTEXT)) == PLAINTEXT


def test_sealed_payload_hides_plaintext() -> None:
    """The sealed bytes do not contain the plaintext."""
    assert b"Jane" not in Sealer(KEY).seal(PLAINTEXT)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    """Each seal uses a fresh nonce, so equal payloads do not look equal on the wire."""
    sealer = Sealer(KEY)
    assert sealer.seal(PLAINTEXT) != sealer.seal(PLAINTEXT)


@pytest.mark.parametrize("index", [0, 12, -1])
def test_tampered_ciphertext_is_permanent_error(index: int) -> None:
    """Flipping any byte (nonce, body or tag) makes open raise PermanentError."""
    sealed = bytearray(Sealer(KEY).seal(PLAINTEXT))
    sealed[index] ^= 0x01
    with pytest.raises(PermanentError):
        Sealer(KEY).open(bytes(sealed))


def test_wrong_key_is_permanent_error() -> None:
    """A payload sealed under another key cannot be opened."""
    with pytest.raises(PermanentError):
        Sealer(OTHER_KEY).open(Sealer(KEY).seal(PLAINTEXT))


def test_hasher_gives_64_hex() -> None:
    """A value's hash is 64 lowercase hex characters (HMAC-SHA256)."""
    assert re.fullmatch(r"[0-9a-f]{64}", Hasher("k").of("Jane Doe"))


def test_hasher_is_stable_for_same_key_and_value() -> None:
    """The same key and value always give the same hash, across instances."""
    assert Hasher("k").of({"a": 1}) == Hasher("k").of({"a": 1})


def test_hasher_differs_by_key() -> None:
    """Another key gives another hash for the same value."""
    assert Hasher("k1").of("Jane Doe") != Hasher("k2").of("Jane Doe")


def test_hasher_differs_by_value() -> None:
    """Different values give different hashes under one key."""
    assert Hasher("k").of("Jane Doe") != Hasher("k").of("John Doe")


def test_hasher_is_keyed_hmac_not_plain_sha256() -> None:
    """Bytes are HMAC-SHA256'd with the key, not merely SHA-256'd."""
    expected = hmac.new(b"k", b"abc", hashlib.sha256).hexdigest()
    assert Hasher("k").of(b"abc") == expected
    assert expected != sha256_hex(b"abc")


def test_hasher_distinguishes_types() -> None:
    """A number and its string form hash differently (values are JSON-encoded first)."""
    assert Hasher("k").of(1) != Hasher("k").of("1")
