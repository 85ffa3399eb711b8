"""The keyed hashes that identify a person without keeping who they are.

Ingest matches participants with them, and the compliance console searches with them;
both must compute them the same way, so they are computed only here.
"""

from __future__ import annotations

import unicodedata

from hub.crypto import Hasher


def _norm(name: str) -> str:
    """Case, accents, spaces and punctuation do not make a different person."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def dob_name_hmac(hasher: Hasher, site: str, family_name: str, given_name: str,
                  date_of_birth: str) -> str:
    return hasher.of(f"{site}|dob-name|{date_of_birth}|{_norm(family_name)}|{_norm(given_name)}")


def state_id_hmac(hasher: Hasher, site: str, state_id: str) -> str:
    return hasher.of(f"{site}|state|{state_id.upper()}")
