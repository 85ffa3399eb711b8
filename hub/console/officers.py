"""Compliance officers' console accounts: created by `hub officer add`, checked at login.

Passwords are kept as scrypt hashes, exactly as OAuth2 client secrets are (hub/auth.py).
Any agency of the site may hold an account, but only a `compliance` agency's may log in.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from hub.auth import _check_secret, _hash_secret
from hub.db.session import unit_of_work
from hub.db.tables import Officer
from hub.errors import BadInput, Conflict, Forbidden, NotFound, Problem, Unauthenticated
from hub.site import AgencyKind, Site

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")
# The ledger names the actor as "console:<username>" in 64 characters: it must fit whole.
MAX_USERNAME = 64 - len("console:")


@cache
def _decoy_hash() -> str:
    """Checked for unknown usernames too, so a login's timing does not tell which exist."""
    return _hash_secret("no such officer", b"lead-hub-decoy!!")


@dataclass(frozen=True)
class SignedIn:
    """The officer a session belongs to (no password material)."""

    id: str
    username: str
    display_name: str
    site: str
    agency: str


def _signed_in(o: Officer) -> SignedIn:
    return SignedIn(o.id, o.username, o.display_name, o.site, o.agency)


class NotCompliance(Forbidden):
    """The account is valid but belongs to an agency that may not use the console."""

    def __init__(self, agency: str, agency_name: str, kind: str) -> None:
        self.agency = agency
        super().__init__(f"This console is for compliance officers only. Your account belongs "
                         f"to {agency_name} ({kind}), which may not use it.")


class Officers:
    def __init__(self, engine: Engine, site: Site) -> None:
        self._engine = engine
        self._site = site

    def add(self, username: str, agency: str, display_name: str) -> tuple[SignedIn, str]:
        """A new account; returns it and its generated password (shown once, never stored)."""
        username = username.strip().lower()
        problems = []
        if not (3 <= len(username) <= MAX_USERNAME) or not set(username) <= USERNAME_CHARS:
            problems.append(Problem("username", f"3 to {MAX_USERNAME} of a-z, 0-9, '.', '_', "
                                                "'-', '@'"))
        if agency not in self._site.agencies:
            problems.append(Problem("agency", f"no agency {agency!r}; known: "
                                              f"{', '.join(self._site.agencies)}"))
        if not display_name.strip() or len(display_name) > 200:
            problems.append(Problem("name", "the officer's full name, at most 200 characters"))
        if problems:
            raise BadInput("this officer cannot be added", problems)
        password = secrets.token_urlsafe(18)
        row = Officer(id=str(uuid.uuid4()), username=username,
                      password_hash=_hash_secret(password, secrets.token_bytes(16)),
                      display_name=display_name.strip(), site=self._site.site, agency=agency)
        try:
            with unit_of_work(self._engine) as s:
                s.add(row)
        except IntegrityError:
            raise Conflict(f"an officer named {username!r} already exists") from None
        return _signed_in(row), password

    def disable(self, username: str) -> None:
        """The account can no longer sign in, and its open sessions end at their next request."""
        with unit_of_work(self._engine) as s:
            row = s.exec(select(Officer).where(Officer.username == username.strip().lower(),
                                               Officer.site == self._site.site)).first()
            if row is None:
                raise NotFound(f"no officer named {username!r} at this site")
            row.disabled = True
            s.add(row)

    def authenticate(self, username: str, password: str) -> SignedIn:
        """The officer these credentials name, if they may use the console."""
        with unit_of_work(self._engine) as s:
            row = s.exec(select(Officer).where(Officer.username == username.strip().lower())
                         ).first()
        if row is None:
            _check_secret(password, _decoy_hash())
            raise Unauthenticated("unknown username or wrong password")
        if not _check_secret(password, row.password_hash) or row.disabled:
            raise Unauthenticated("unknown username or wrong password")
        return self._may_use_console(row)

    def current(self, officer_id: str) -> SignedIn | None:
        """The officer of a session, while the account still may use the console."""
        with unit_of_work(self._engine) as s:
            row = s.get(Officer, officer_id)
        if row is None or row.disabled:
            return None
        try:
            return self._may_use_console(row)
        except Forbidden:
            return None

    def _may_use_console(self, row: Officer) -> SignedIn:
        agency = self._site.agencies.get(row.agency)
        if row.site != self._site.site or agency is None:
            raise Forbidden("this account belongs to another site")
        if agency.kind != AgencyKind.COMPLIANCE:
            raise NotCompliance(row.agency, agency.name, agency.kind.value)
        return _signed_in(row)
