"""Console sessions: a short-lived JWT in an HttpOnly, SameSite=Strict cookie, and CSRF tokens.

The JWT is signed (HS256, joserfc, as hub/auth.py does) with a key derived from the hub's
token key for this one use, and carries its own issuer: a console session is never a
bearer token for the API, nor the other way round. Every POST form carries a CSRF token
that is a keyed hash of the session's id, so it is tied to that session and dies with it.
The login form, before any session exists, is protected the same way by a nonce cookie.
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

from hub.console.officers import SignedIn

COOKIE = "lead_console"
LOGIN_COOKIE = "lead_console_login"
ISSUER = "lead-hub/console"
ALGORITHMS = ["HS256"]
TTL_SECONDS = 20 * 60  # renewed while the officer is active
MAX_AGE_SECONDS = 10 * 3600  # then log in again, however active


@dataclass(frozen=True)
class Session:
    session_id: str
    officer_id: str
    username: str
    issued_at: int
    expires_at: int
    auth_time: int


class Sessions:
    def __init__(self, token_key: str) -> None:
        self._secret = hashlib.sha256(b"lead-hub console session|" + token_key.encode()).digest()
        self._key = OctKey.import_key(self._secret)
        self._claims = jwt.JWTClaimsRegistry(
            leeway=5, iss={"essential": True, "value": ISSUER}, exp={"essential": True},
            sub={"essential": True}, jti={"essential": True},
        )

    def issue(self, officer: SignedIn, previous: Session | None = None) -> tuple[str, Session]:
        """A new session token (or a renewal of `previous`, keeping its id and login time)."""
        now = int(time.time())
        session = Session(
            session_id=previous.session_id if previous else uuid.uuid4().hex,
            officer_id=officer.id, username=officer.username, issued_at=now,
            expires_at=now + TTL_SECONDS, auth_time=previous.auth_time if previous else now)
        claims = {"iss": ISSUER, "sub": session.officer_id, "usr": session.username,
                  "iat": now, "exp": session.expires_at, "jti": session.session_id,
                  "auth_time": session.auth_time}
        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, self._key,
                           algorithms=ALGORITHMS)
        return token, session

    def read(self, token: str | None) -> Session | None:
        """The session a cookie holds, or None if it is missing, forged or expired."""
        if not token:
            return None
        try:
            claims = jwt.decode(token, self._key, algorithms=ALGORITHMS).claims
            self._claims.validate(claims)
            session = Session(str(claims["jti"]), str(claims["sub"]), str(claims["usr"]),
                              int(claims["iat"]), int(claims["exp"]), int(claims["auth_time"]))
        except (JoseError, ValueError, KeyError, TypeError):
            return None
        if session.auth_time + MAX_AGE_SECONDS < time.time():
            return None
        return session

    @staticmethod
    def due_for_renewal(session: Session) -> bool:
        return session.expires_at - time.time() < TTL_SECONDS / 2

    # CSRF -----------------------------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.session_id)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))

    @staticmethod
    def new_login_nonce() -> str:
        return secrets.token_urlsafe(24)

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def login_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(
            self.login_token(str(nonce)), str(token))
