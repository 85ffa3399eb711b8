"""OAuth2 client credentials: the hub registers clients and issues the bearer tokens it checks.

Each client belongs to one agency of one site and holds scopes. Secrets are kept as scrypt
hashes; tokens are short-lived JWTs signed by the hub (joserfc, the JOSE library authlib
itself now delegates to; `authlib.jose` is deprecated).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import Engine

from hub.db.session import unit_of_work
from hub.db.tables import Client
from hub.errors import BadInput, Forbidden, NotFound, Problem, Unauthenticated

SCOPES = frozenset({
    "diversion.write", "hold.write", "status.write", "inbox.read",
    "consent.write", "court-order.write", "audit.read", "admin",
})
ISSUER = "lead-hub"
ALGORITHMS = ["HS256"]


@dataclass(frozen=True)
class Principal:
    client_id: str
    site: str
    agency: str
    scopes: frozenset[str]

    def require(self, scope: str, agency: str | None = None) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this client lacks the '{scope}' scope")
        if agency is not None and agency != self.agency:
            raise Forbidden("a client may act only as its own agency")


def _hash_secret(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_secret(secret: str, stored: str) -> bool:
    _, salt_hex, _ = stored.split("$")
    return hmac.compare_digest(_hash_secret(secret, bytes.fromhex(salt_hex)), stored)


class Clients:
    def __init__(self, engine: Engine, token_key: str, ttl_seconds: int) -> None:
        self._engine = engine
        self._key = OctKey.import_key(token_key.encode())
        self._claims = jwt.JWTClaimsRegistry(
            leeway=5, iss={"essential": True, "value": ISSUER}, exp={"essential": True},
            sub={"essential": True},
        )
        self._ttl = ttl_seconds

    def register(self, site: str, agency: str, scopes: set[str]) -> tuple[str, str]:
        """A new client for an agency; returns (client_id, secret). The secret is shown once."""
        unknown = scopes - SCOPES
        if unknown:
            raise BadInput("unknown scope(s)", [Problem("scopes", f"{sorted(unknown)}; known: "
                                                        f"{sorted(SCOPES)}")])
        client_id = f"{site}.{agency}.{uuid.uuid4().hex[:12]}"
        secret = secrets.token_urlsafe(32)
        with unit_of_work(self._engine) as s:
            s.add(Client(client_id=client_id, secret_hash=_hash_secret(secret, secrets.token_bytes(16)),
                         site=site, agency=agency, scopes=" ".join(sorted(scopes))))
        return client_id, secret

    def issue_token(self, client_id: str, secret: str, requested: str | None) -> dict[str, object]:
        """RFC 6749 §4.4 client credentials grant."""
        with unit_of_work(self._engine) as s:
            client = s.get(Client, client_id)
        if client is None or client.disabled or not _check_secret(secret, client.secret_hash):
            raise Unauthenticated("invalid_client")
        held = set(client.scopes.split())
        scopes = set(requested.split()) if requested else held
        if not scopes <= held:
            raise Forbidden("invalid_scope")
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": client.client_id, "site": client.site,
                  "agency": client.agency, "scope": " ".join(sorted(scopes)),
                  "iat": now, "exp": now + self._ttl, "jti": uuid.uuid4().hex}
        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key, algorithms=ALGORITHMS)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self._ttl,
                "scope": claims["scope"]}

    def verify(self, token: str) -> Principal:
        """The client a token names, while that client is registered and not disabled.

        Costs one primary-key read per request: that is what makes `hub client disable`
        take effect at once rather than when the client's last token expires.
        """
        try:
            claims = jwt.decode(token, self._key, algorithms=ALGORITHMS).claims
            self._claims.validate(claims)
        except (JoseError, ValueError):
            raise Unauthenticated("invalid_token") from None
        with unit_of_work(self._engine) as s:
            client = s.get(Client, str(claims["sub"]))
        if client is None or client.disabled:
            raise Unauthenticated("invalid_token: this client is disabled or no longer "
                                  "registered")
        return Principal(str(claims["sub"]), str(claims["site"]), str(claims["agency"]),
                         frozenset(str(claims["scope"]).split()))

    def disable(self, site: str, client_id: str) -> None:
        """The client gets no new tokens, and the tokens it holds stop working at once."""
        with unit_of_work(self._engine) as s:
            client = s.get(Client, client_id)
            if client is None or client.site != site:
                raise NotFound(f"no client {client_id!r} at site {site!r}")
            client.disabled = True
            s.add(client)
