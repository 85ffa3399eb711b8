"""Console sign-in is limited per username and per client address, over HTTP, and ledgered."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import select

from hub.api.server import ApiThread
from hub.bootstrap import Hub, bootstrap
from hub.console.officers import Officers
from hub.db.session import unit_of_work
from hub.db.tables import LedgerEntry
from hub.partners import PartnerServer
from hub.settings import Settings
from tests.harness import RunningHub, hub_cli

MAX_FAILURES = 3
ADDRESS_MAX = 4
KINDS = ("login-failed", "account-locked", "account-unlocked", "address-limited")
# The first delay, doubled after each failure: long enough that two sign-ins made one after
# the other fall inside it even on a loaded machine.
BASE = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Fewer failures before a lock, so a test need not wait out 1+2+4+8 seconds."""
    return settings.model_copy(update={"console_login_max_failures": MAX_FAILURES,
                                       "console_login_base_delay_seconds": float(BASE),
                                       "console_login_address_max_failures": ADDRESS_MAX,
                                       "console_login_address_window_seconds": 900})


@pytest.fixture
def console(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    """The API only: sign-in needs no workers."""
    with RunningHub(hub, partners, workers=False) as rh:
        yield rh


def _officer(running: RunningHub) -> tuple[str, str]:
    officer, password = Officers(running.hub.engine, running.hub.site).add(
        "casey.auditor", "compliance", "Casey Auditor")
    return officer.username, password


def sign_in(base_url: str, username: str, password: str,
            address: str = "198.51.100.1") -> httpx.Response:
    """A fresh client's sign-in; uvicorn trusts X-Forwarded-For from 127.0.0.1, as a proxy."""
    with httpx.Client(base_url=base_url, timeout=10) as c:
        form = c.get("/console/login")
        found = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert found, form.text
        return c.post("/console/login", headers={"X-Forwarded-For": address}, data={
            "username": username, "password": password, "login_token": found[1],
            "next": "/console"})


def _url(running: RunningHub) -> str:
    return str(running.http.base_url)


def _retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text)
    assert "Traceback" not in r.text
    return int(r.headers["Retry-After"])


def _events(hub: Hub) -> list[LedgerEntry]:
    with unit_of_work(hub.engine) as s:
        return list(s.exec(select(LedgerEntry).where(
            LedgerEntry.decision.in_(KINDS))  # type: ignore[attr-defined]
            .order_by(LedgerEntry.seq)).all())  # type: ignore[arg-type]


def _text(entry: LedgerEntry) -> str:
    return " ".join(str(v) for v in entry.model_dump().values())


def test_each_failure_delays_the_next_check_longer_and_a_success_resets(
        console: RunningHub) -> None:
    """Failures answer 429 + Retry-After, then twice as long, even to the right password; success
    resets."""
    username, password = _officer(console)
    url = _url(console)
    assert sign_in(url, username, "wrong-1").status_code == 401
    assert _retry_after(sign_in(url, username, password)) == BASE
    time.sleep(BASE + 0.1)
    assert sign_in(url, username, "wrong-2").status_code == 401
    refused = sign_in(url, username, password)
    assert _retry_after(refused) == 2 * BASE
    assert f"Too many failed sign-ins. Wait {2 * BASE} seconds" in refused.text
    time.sleep(2 * BASE + 0.1)
    assert sign_in(url, username, password).status_code == 303
    assert sign_in(url, username, "wrong-3").status_code == 401  # counted from one again
    assert _retry_after(sign_in(url, username, password)) == BASE
    time.sleep(BASE + 0.1)
    assert sign_in(url, username, password).status_code == 303
    failed = [e for e in _events(console.hub) if e.decision == "login-failed"]
    assert [e.discloser for e in failed] == [f"console:{username}"] * 3
    assert all("wrong-" not in _text(e) and password not in _text(e) for e in failed)


def test_a_username_that_exists_and_one_that_does_not_are_answered_alike(
        console: RunningHub) -> None:
    """The delay and the lock treat an unknown username exactly as a real one."""
    username, _ = _officer(console)
    url = _url(console)

    def answers(name: str, address: str) -> tuple[int, bool]:
        # the status and whether a wait is asked for; the seconds left depend on the clock
        r = sign_in(url, name, "not-the-password", address)
        return r.status_code, "Retry-After" in r.headers

    for wait in (BASE + 0.1, 2 * BASE + 0.1, 0):
        assert answers(username, "198.51.100.2") == answers("no.such.officer", "198.51.100.3")
        assert answers(username, "198.51.100.2") == answers("no.such.officer", "198.51.100.3")
        time.sleep(wait)
    assert answers(username, "198.51.100.2") == answers("no.such.officer", "198.51.100.3") \
        == (423, False)


def test_repeated_failures_lock_the_account_until_an_officer_unlocks_it(
        console: RunningHub, settings: Settings) -> None:
    """After N failures even the right password is refused, in every hub process, until unlock."""
    username, password = _officer(console)
    url = _url(console)
    for wait in (BASE + 0.1, 2 * BASE + 0.1, 0):
        assert sign_in(url, username, "wrong-password").status_code == 401
        time.sleep(wait)
    locked = sign_in(url, username, password)
    assert locked.status_code == 423 and "Retry-After" not in locked.headers
    assert "this username is locked" in locked.text and "Traceback" not in locked.text

    other = bootstrap(settings, declare=False)  # another hub process on the same database
    api = ApiThread(other).start()
    try:
        assert sign_in(api.url, username, password).status_code == 423
    finally:
        api.stop()
        other.close()

    unlocked = hub_cli(console.hub.settings, "officer", "unlock", username)
    assert unlocked.returncode == 0, unlocked.stderr
    assert f"officer {username} unlocked" in unlocked.stdout
    assert sign_in(url, username, password).status_code == 303
    unknown = hub_cli(console.hub.settings, "officer", "unlock", "nobody")
    assert unknown.returncode == 2 and "no officer named 'nobody'" in unknown.stderr

    events = _events(console.hub)
    assert [e.decision for e in events] == ["login-failed"] * 3 + [
        "account-locked", "account-unlocked"]
    assert all(e.discloser == f"console:{username}" for e in events[:4])
    assert events[3].reason.startswith("locked after 3 consecutive failed sign-ins")
    assert events[4].discloser.startswith("cli:")
    assert events[4].field_path == f"console account {username}"
    assert events[4].reason == "lock lifted and failed sign-ins reset"
    assert all("wrong-password" not in _text(e) and password not in _text(e) for e in events)


def test_an_address_with_too_many_failures_is_refused_for_any_username(
        console: RunningHub) -> None:
    """M failures from one address, all for unknown names, then 429 for every name from it."""
    username, password = _officer(console)
    url = _url(console)
    typed = [f"guess-{i}@example.org" for i in range(ADDRESS_MAX + 1)]
    for name in typed[:ADDRESS_MAX]:
        assert sign_in(url, name, "hunter2", "203.0.113.9").status_code == 401
    assert 890 <= _retry_after(sign_in(url, typed[-1], "hunter2", "203.0.113.9")) <= 900
    assert 890 <= _retry_after(sign_in(url, username, password, "203.0.113.9")) <= 900
    assert sign_in(url, username, password, "203.0.113.10").status_code == 303

    events = _events(console.hub)
    assert [e.decision for e in events] == ["login-failed"] * ADDRESS_MAX + ["address-limited"]
    assert all(e.discloser == "console:unknown-account" for e in events)
    assert all(e.field_path == "console sign-in from 203.0.113.9" for e in events)
    assert all(name not in _text(e) and "hunter2" not in _text(e)
               for e in events for name in typed)


def test_parallel_attempts_cannot_slip_through_together(console: RunningHub) -> None:
    """A burst at one name has one password checked; a burst from one address at most M."""
    username, _ = _officer(console)
    url = _url(console)
    with ThreadPoolExecutor(8) as pool:
        at_name = list(pool.map(lambda i: sign_in(url, username, "wrong", f"192.0.2.{i}"
                                                  ).status_code, range(8)))
        from_address = list(pool.map(lambda i: sign_in(url, f"guess-{i}", "wrong",
                                                       "192.0.2.200").status_code, range(8)))
    assert sorted(at_name) == [401] + [429] * 7
    assert 1 <= from_address.count(401) <= ADDRESS_MAX
    assert from_address.count(401) + from_address.count(429) == 8
