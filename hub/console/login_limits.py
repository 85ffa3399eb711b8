"""Console sign-in limits: a growing delay and then a lock per username, a cap per address.

Per username: after each consecutive failure the next password is not even checked for
`base_delay * 2**(failures - 1)` seconds (429 with Retry-After); after `max_failures` the
name is locked until `hub officer unlock`. The state is keyed by a keyed hash of the name
typed, whether or not an account has it, so a limiter's answers never tell which names
exist. Per client address: at most `address_max_failures` failures within the window,
for any name.

State lives in the database (several hub processes, restarts). Each attempt is claimed
before its password is checked (a row per address, an increment per name) and given back
if the password was right, so parallel attempts cannot slip through together.
Failures, locks, an address reaching its cap and unlocks are ledgered; refusals are not,
so a flood of refused requests cannot flood the ledger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select

from hub import ledger_events
from hub.bootstrap import Hub
from hub.db.session import insert_ignoring_duplicates, unit_of_work
from hub.db.tables import ConsoleLoginAccount, ConsoleLoginFailure, Officer, utcnow
from hub.errors import HubError, NotFound

MAX_DELAY_SECONDS = 86_400  # keeps 2**n within timedelta for large max_failures
UNKNOWN = "console:unknown-account"


class TooManyAttempts(HubError):
    """Not checked: this name is in its delay, or this address used up its failures."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; retry after {retry_after} s")
        self.retry_after = retry_after


class AccountLocked(HubError):
    """Not checked: this name failed too often in a row and waits for an officer."""


@dataclass(frozen=True)
class Attempt:
    """A claimed sign-in attempt, to be reported as failed or succeeded."""

    account_key: str
    address: str
    failure_id: int
    failures: int  # consecutive failures of this name if this one fails too


def client_address(request: Request) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For of trusted proxies)."""
    return (request.client.host if request.client else "unknown")[:64]


def _key(hub: Hub, username: str) -> str:
    return hub.hasher.of(["console-login", hub.site.site, username.strip().lower()])


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))


def _delay(hub: Hub, failures: int) -> timedelta:
    base = hub.settings.console_login_base_delay_seconds
    return timedelta(seconds=min(base * 2 ** (failures - 1), MAX_DELAY_SECONDS))


def admit(hub: Hub, username: str, address: str) -> Attempt:
    """Claim an attempt for this name from this address, or refuse it unchecked."""
    now, settings = utcnow(), hub.settings
    window = timedelta(seconds=settings.console_login_address_window_seconds)
    forget = timedelta(hours=settings.console_login_forget_after_hours)
    with unit_of_work(hub.engine) as s:  # committed first, so parallel attempts see it
        s.execute(delete(ConsoleLoginFailure).where(
            col(ConsoleLoginFailure.failed_at) < now - window))
        s.execute(delete(ConsoleLoginAccount).where(
            col(ConsoleLoginAccount.locked_at).is_(None),
            col(ConsoleLoginAccount.last_failure_at) < now - forget))
        claim = ConsoleLoginFailure(address=address, failed_at=now)
        s.add(claim)
        s.flush()
        assert claim.id is not None
    with unit_of_work(hub.engine) as s:
        others = s.exec(select(ConsoleLoginFailure.failed_at).where(
            ConsoleLoginFailure.address == address, ConsoleLoginFailure.id != claim.id,
            col(ConsoleLoginFailure.failed_at) >= now - window,
        ).order_by(col(ConsoleLoginFailure.failed_at))).all()
    limit = settings.console_login_address_max_failures
    try:
        if len(others) >= limit:  # free again once enough of the oldest age out
            raise TooManyAttempts(_seconds_until(others[len(others) - limit] + window, now))
        return Attempt(_key(hub, username), address, claim.id,
                       _claim_account(hub, _key(hub, username), now))
    except HubError:
        _drop_address_claim(hub, claim.id)
        raise


def _claim_account(hub: Hub, key: str, now: datetime) -> int:
    """Count this attempt as a failure of the name now; a success takes it back."""
    with unit_of_work(hub.engine) as s:
        insert_ignoring_duplicates(s, ConsoleLoginAccount, [{"account_key": key,
                                                             "failed_count": 0}])
        row = s.get(ConsoleLoginAccount, key)
        if row is None:  # a parallel success just removed it
            raise TooManyAttempts(1)
        if row.locked_at is not None:
            raise AccountLocked("this username is locked after repeated failed sign-ins")
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            raise TooManyAttempts(_seconds_until(row.next_attempt_at, now))
        failures = row.failed_count + 1
        claimed = s.execute(update(ConsoleLoginAccount).where(
            col(ConsoleLoginAccount.account_key) == key,
            col(ConsoleLoginAccount.failed_count) == row.failed_count,
            col(ConsoleLoginAccount.locked_at).is_(None),
            or_(col(ConsoleLoginAccount.next_attempt_at).is_(None),
                col(ConsoleLoginAccount.next_attempt_at) <= now),
        ).values(failed_count=failures, last_failure_at=now,
                 next_attempt_at=now + _delay(hub, failures)))
        if claimed.rowcount != 1:  # a parallel attempt claimed it first
            raise TooManyAttempts(_seconds_until(now + _delay(hub, failures), now))
    return failures


def _drop_address_claim(hub: Hub, failure_id: int) -> None:
    with unit_of_work(hub.engine) as s:
        s.execute(delete(ConsoleLoginFailure).where(
            col(ConsoleLoginFailure.id) == failure_id))


def succeeded(hub: Hub, attempt: Attempt) -> None:
    """The password was right: the name's count starts again and the address is not charged."""
    _drop_address_claim(hub, attempt.failure_id)
    with unit_of_work(hub.engine) as s:
        s.execute(delete(ConsoleLoginAccount).where(
            col(ConsoleLoginAccount.account_key) == attempt.account_key))


def _officer(hub: Hub, username: str) -> Officer | None:
    with unit_of_work(hub.engine) as s:
        return s.exec(select(Officer).where(Officer.username == username.strip().lower(),
                                            Officer.site == hub.site.site)).first()


def failed(hub: Hub, attempt: Attempt, username: str) -> None:
    """Ledger a wrong password (names only existing accounts), and the lock it may cause."""
    settings, now = hub.settings, utcnow()
    locks = attempt.failures >= settings.console_login_max_failures
    window = timedelta(seconds=settings.console_login_address_window_seconds)
    with unit_of_work(hub.engine) as s:
        if locks:
            s.execute(update(ConsoleLoginAccount).where(
                col(ConsoleLoginAccount.account_key) == attempt.account_key,
                col(ConsoleLoginAccount.locked_at).is_(None)).values(locked_at=now))
        position = s.exec(select(func.count()).select_from(ConsoleLoginFailure).where(
            ConsoleLoginFailure.address == attempt.address,
            col(ConsoleLoginFailure.id) <= attempt.failure_id,
            col(ConsoleLoginFailure.failed_at) >= now - window)).one()
    officer = _officer(hub, username)
    if officer is None:  # a name typed is not written down: it may be a password
        actor, why = UNKNOWN, f"unknown account (username hash {attempt.account_key[:16]})"
    else:
        actor = f"console:{officer.username}"
        why = "account disabled" if officer.disabled else "wrong password"

    def record(kind: str, reason: str) -> None:
        ledger_events.record(hub.engine, hub.chain, site=hub.site.site, kind=kind,
                             actor=actor, subject=f"console sign-in from {attempt.address}",
                             reason=reason)

    record(ledger_events.LOGIN_FAILED, f"{why}; consecutive failure {attempt.failures} of "
                                       f"{settings.console_login_max_failures}")
    if locks:
        record(ledger_events.ACCOUNT_LOCKED, f"locked after {attempt.failures} consecutive "
                                             "failed sign-ins, until `hub officer unlock`")
    if position == settings.console_login_address_max_failures:
        record(ledger_events.ADDRESS_LIMITED,
               f"{position} failed sign-ins from this address within "
               f"{settings.console_login_address_window_seconds} s: further attempts refused")


def unlock(hub: Hub, username: str, actor: str) -> bool:
    """Lift a lock and reset the count (ledgered with who did it); True if it was locked."""
    officer = _officer(hub, username)
    if officer is None:
        raise NotFound(f"no officer named {username!r} at this site")
    key = _key(hub, officer.username)
    with unit_of_work(hub.engine) as s:
        row = s.get(ConsoleLoginAccount, key)
        was_locked = row is not None and row.locked_at is not None
        s.execute(delete(ConsoleLoginAccount).where(
            col(ConsoleLoginAccount.account_key) == key))
    ledger_events.record(hub.engine, hub.chain, site=hub.site.site,
                         kind=ledger_events.ACCOUNT_UNLOCKED, actor=actor,
                         subject=f"console account {officer.username}",
                         reason="lock lifted and failed sign-ins reset" if was_locked
                         else "was not locked; failed sign-ins reset")
    return was_locked


def forget(hub: Hub, username: str) -> None:
    """A new account starts clean, even if someone failed under its name before it existed."""
    with unit_of_work(hub.engine) as s:
        s.execute(delete(ConsoleLoginAccount).where(
            col(ConsoleLoginAccount.account_key) == _key(hub, username)))
