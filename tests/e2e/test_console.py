"""The compliance console, used in headless Chromium against the real hub."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select
from structlog.testing import capture_logs

from hub.db.session import unit_of_work
from hub.db.tables import LedgerCheckpoint, LedgerEntry
from hub.errors import Unauthenticated
from tests.e2e.conftest import add_officer, sign_in
from tests.harness import RunningHub, notice, status, wait_for
from tests.queues import depth

PERSON = {"given_name": "Zoë", "family_name": "Núñez-Testperson", "date_of_birth": "1988-03-14",
          "state_id": "NM-T-5521"}
PROVIDER = "LEAD Case Management and Treatment (demo provider)"
DA = "First Judicial District Attorney"


def _case(running: RunningHub) -> tuple[str, str]:
    """A diversion notice delivered to the DA and the provider: (case id, participant id)."""
    case = running.submit("sfpd", "diversion-notices", notice(person=PERSON))
    wait_for("notice delivered", lambda: running.settled(case, 2))
    found = running.hub.store.case(running.hub.site.site, case)
    assert found is not None and found.participant_id
    return case, found.participant_id


def _events(running: RunningHub, kind: str, actor: str) -> list[LedgerEntry]:
    with unit_of_work(running.hub.engine) as s:
        return list(s.exec(select(LedgerEntry).where(
            LedgerEntry.decision == kind, LedgerEntry.discloser == actor)
            .order_by(LedgerEntry.seq)).all())  # type: ignore[arg-type]


def _checkpoints(running: RunningHub) -> int:
    with unit_of_work(running.hub.engine) as s:
        return len(s.exec(select(LedgerCheckpoint)).all())


def test_officer_finds_the_patient_by_case_and_by_name_and_reads_the_accounting(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """Both searches open the accounting, which lists the DA and provider disclosures by field."""
    case, pid = _case(running)
    page.get_by_label("Case id").fill(case)
    page.get_by_role("button", name="Find by case").click()
    expect(page).to_have_url(re.compile(f"/console/participants/{pid}$"))
    disclosures = page.get_by_role("table", name="Disclosures")
    expect(disclosures).to_contain_text(PROVIDER)
    expect(disclosures).to_contain_text(DA)
    text = disclosures.inner_text()
    sent = {r.field_path for r in running.hub.ledger.for_message(case) if r.decision == "disclosed"}
    assert sent and all(path in text for path in sent)
    assert "Núñez" not in page.content()  # the ledger, and so the page, holds no values

    page.get_by_role("link", name="Find a participant").click()
    page.get_by_label("Family name").fill("NUNEZ TESTPERSON")
    page.get_by_label("Given name").fill("zoe")
    page.get_by_label("Date of birth", exact=True).fill(PERSON["date_of_birth"])
    page.get_by_role("button", name="Find by name").click()
    expect(page).to_have_url(re.compile(f"/console/participants/{pid}$"))

    other = running.submit("sfpd", "diversion-notices",
                           notice(person={**PERSON, "state_id": "NM-T-9988"}))
    wait_for("second person's notice delivered", lambda: running.settled(other, 2))
    found = running.hub.store.case(running.hub.site.site, other)
    assert found is not None and found.participant_id not in (None, pid)
    page.get_by_role("link", name="Find a participant").click()
    page.get_by_label("Family name").fill("Núñez-Testperson")
    page.get_by_label("Given name").fill("Zoë")
    page.get_by_label("Date of birth", exact=True).fill(PERSON["date_of_birth"])
    page.get_by_role("button", name="Find by name").click()
    matches = page.get_by_role("table", name="Matching participants")
    expect(matches.get_by_role("link")).to_have_count(2)  # two state ids: two people
    matches.get_by_role("link", name=pid).click()
    expect(page).to_have_url(re.compile(f"/console/participants/{pid}$"))

    csv = page.request.get(f"/console/participants/{pid}/accounting.csv")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert PROVIDER in csv.text()
    page.goto(f"/console/participants/{pid}?from=2001-01-01&to=2024-12-31")
    expect(page.get_by_role("alert")).to_contain_text("at most 3 years")

    views = _events(running, "viewed", f"console:{officer}")
    page_of = f"/console/participants/{pid}"
    assert [(v.field_path, v.participant_id) for v in views] == [
        (page_of, pid), (page_of, pid),
        ("/console/search", pid), ("/console/search", found.participant_id), (page_of, pid),
        (f"{page_of}/accounting.csv", pid)]
    assert all(v.reason == "compliance console page view" for v in views)


def test_withheld_status_update_is_listed_with_its_reason(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """A provider status withheld from the DA and police shows on /console/withheld with why."""
    case, _ = _case(running)
    status_id = running.submit("provider", "referral-status", status(case))
    wait_for("status settled", lambda: running.settled(status_id, 2))
    page.get_by_role("link", name="Withheld").click()
    rows = page.get_by_role("row").filter(has_text=status_id)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=DA)).to_contain_text("plan_summary")
    reasons = {r.reason for r in running.hub.ledger.for_message(status_id)}
    text = page.get_by_role("table").inner_text()
    assert reasons and all(reason in text for reason in reasons)
    views = _events(running, "viewed", f"console:{officer}")
    assert [(v.field_path, v.participant_id) for v in views] == [("/console/withheld", None)]


def test_parked_delivery_is_replayed_from_the_dlq_page_and_delivered(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """A delivery the provider refused is parked, replayed from the console, and delivered."""
    ehr = running.partners["provider"]
    ehr.state.fail_with = 400
    case = running.submit("sfpd", "diversion-notices", notice(person=PERSON))
    wait_for("parked", lambda: depth(running.hub, "deliver", parked=True) == 1)
    page.get_by_role("link", name="Parked messages").click()
    row = page.get_by_role("row").filter(has_text=case)
    expect(row).to_contain_text("HTTP 400")
    expect(row).to_contain_text(PROVIDER)
    ehr.state.fail_with = None
    row.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed 1 message(s)")
    expect(page.get_by_text("Nothing is parked")).to_be_visible()
    wait_for("delivered after replay", lambda: ehr.message_ids() == [case])
    wait_for("recorded as delivered", lambda: {
        d.recipient: d.status for d in running.hub.store.deliveries_of(case)} == {
        "provider": "delivered", "da": "delivered"})
    replays = _events(running, "replayed", f"console:{officer}")
    assert [(r.message_id, r.field_path) for r in replays] == [(case, "deliver")]
    assert [v.field_path for v in _events(running, "viewed", f"console:{officer}")] == [
        "/console/dlq", "/console/dlq"]


def test_da_officer_is_refused_the_console(running: RunningHub, page: Page) -> None:
    """An account of the DA's office is refused at login, with a reason and a log free of PHI."""
    username, password = add_officer(running, "da", "Dana Prosecutor")
    with capture_logs() as logs:
        sign_in(page, username, password)
        expect(page.get_by_role("alert")).to_contain_text("for compliance officers only")
    expect(page.get_by_role("alert")).to_contain_text(DA)
    assert not any(c["name"] == "lead_console" for c in page.context.cookies())
    refused = [e for e in logs if e["event"] == "console login refused"]
    assert refused and refused[0]["agency"] == "da"
    assert not any(username in str(v) or "Dana" in str(v) for e in logs for v in e.values())
    page.goto("/console/withheld")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fwithheld$"))


def test_anonymous_and_signed_out_requests_are_sent_to_the_login_page(
    running: RunningHub, page: Page,
) -> None:
    """Without a session (never signed in, or signed out) pages redirect to login; POSTs do nothing."""
    for path in ("/console", "/console/participants/x", "/console/withheld", "/console/dlq",
                 "/console/ledger", "/console/court-orders"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/console/login\?next="))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    r = page.request.post("/console/ledger/checkpoint", form={"csrf_token": "x"},
                          max_redirects=0)
    assert r.status == 303 and r.headers["location"].startswith("/console/login")
    assert _checkpoints(running) == 0

    sign_in(page, *add_officer(running))
    expect(page.get_by_role("heading", name="Find a participant")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/console/dlq")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fdlq$"))


def test_post_without_the_csrf_token_is_refused(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """A signed-in officer's POST without, or with a wrong, CSRF token is 403 and does nothing."""
    cookie = next(c for c in page.context.cookies() if c["name"] == "lead_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    with pytest.raises(Unauthenticated):  # a console session is no bearer token for the API
        running.hub.clients.verify(cookie["value"])
    refused: list[dict[str, str | float | bool]] = [{}, {"csrf_token": "forged"}]
    for form in refused:
        r = page.request.post("/console/ledger/checkpoint", form=form, max_redirects=0)
        assert r.status == 403 and "security token" in r.text()
        r = page.request.post("/console/dlq/replay", max_redirects=0,
                              form={**form, "step": "deliver", "message_id": "m"})
        assert r.status == 403
    assert _checkpoints(running) == 0
    assert _events(running, "replayed", f"console:{officer}") == []


def test_ledger_page_shows_verified_signs_a_checkpoint_and_shows_a_failure(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """Verify on request shows the chain verified; a checkpoint is signed; a forged one is named."""
    _case(running)
    page.get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("status")).to_contain_text("has not been verified")
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_role("status")).to_contain_text("Ledger verified")
    page.get_by_role("button", name="Sign a checkpoint now").click()
    expect(page.locator(".flash")).to_contain_text("Checkpoint 1 signed")
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator(".ok")).to_contain_text("1 signed checkpoint(s)")
    expect(page.get_by_role("table", name="Recent checkpoints")).to_contain_text("on-demand")
    assert _checkpoints(running) == 1

    with unit_of_work(running.hub.engine) as s:  # a checkpoint the hub's key never signed
        s.add(LedgerCheckpoint(upto_seq=1, head_hash="0" * 64, reason="on-demand",
                               public_key=running.hub.signer.public_hex, signature="00" * 64))
    page.get_by_role("button", name="Verify now").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("LEDGER VERIFICATION FAILED")
    expect(alert).to_contain_text("no valid signature")


def test_court_order_form_names_its_problems_then_enters_the_order(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """A wrong order is refused field by field, without a stack trace; a right one is entered."""
    case, pid = _case(running)
    now = datetime.now(ZoneInfo(running.hub.site.timezone)).replace(second=0, microsecond=0)
    page.get_by_role("link", name="Court orders").click()
    expect(page.get_by_text("No court orders have been entered")).to_be_visible()
    page.get_by_label("Case id").fill(case)
    page.get_by_label("Court", exact=True).fill("First Judicial District Court")
    page.get_by_label("Docket number").fill("D-101-CV-2025-77")
    page.get_by_label("Issued").fill(_local(now))
    page.get_by_label("Valid until").fill(_local(now - timedelta(days=1)))
    page.get_by_role("group", name="Who may disclose").get_by_label(PROVIDER).check()
    page.get_by_role("group", name="Recipients").get_by_label("Santa Fe Police Department").check()
    page.get_by_role("group", name="Purposes").get_by_label("LEAD-CJ-MONITORING").check()
    page.get_by_label("Link to the signed order").fill("https://court.example/orders/77.pdf")
    page.get_by_role("button", name="Enter the court order").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Data classes")
    assert "Traceback" not in page.content()
    expect(page.get_by_label("Docket number")).to_have_value("D-101-CV-2025-77")

    page.get_by_role("group", name="Data classes").get_by_label("engagement").check()
    page.get_by_role("button", name="Enter the court order").click()
    expect(page.get_by_role("alert")).to_contain_text("Valid until: must be after issued_at")
    page.get_by_label("Valid until").fill(_local(now + timedelta(days=30)))
    page.get_by_role("button", name="Enter the court order").click()
    expect(page.locator(".flash")).to_contain_text("Court order entered")
    expect(page.get_by_role("table", name="Orders on file")).to_contain_text("D-101-CV-2025-77")

    orders = [c for c in running.hub.registry.consents_for(pid) if c.kind == "court-order"]
    assert len(orders) == 1 and orders[0].recipients == {"sfpd"}
    assert {c.value for c in orders[0].classes} == {"engagement"}
    views = [v.field_path for v in _events(running, "viewed", f"console:{officer}")]
    assert views == ["/console/court-orders"] * 4


def _local(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M")


def test_accounting_names_a_court_order_and_links_to_the_order(
    running: RunningHub, page: Page, officer: str,
) -> None:
    """A court-ordered disclosure reads "court order" with its docket, linked to the order's page."""
    case, pid = _case(running)
    now = datetime.now(ZoneInfo(running.hub.site.timezone))
    token = running.token("compliance", {"court-order.write"})
    r = running.http.post("/v1/court-orders", headers={"Authorization": f"Bearer {token}"}, json={
        "case_ref": case, "court": "First Judicial District Court", "docket": "D-101-CR-2026-9",
        "issued_at": (now - timedelta(minutes=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(), "disclosers": ["provider"],
        "recipients": ["sfpd"], "purposes": ["LEAD-CJ-MONITORING"],
        "classes": ["referral", "engagement"], "entered_by": "Officer Test",
        "order_document_url": "https://court.example/orders/9.pdf"})
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("status settled", lambda: running.settled(message_id, 2))

    page.goto(f"/console/participants/{pid}")
    disclosures = page.get_by_role("table", name="Disclosures")
    expect(disclosures).to_contain_text("court order (42 CFR Part 2 Subpart E)")
    expect(disclosures).to_contain_text("D-101-CR-2026-9")
    page.get_by_role("link", name=f"CourtOrder/{order_id}/_history/1").click()
    expect(page).to_have_url(re.compile(f"/console/court-orders/{order_id}$"))
    expect(page.locator("dl.order")).to_contain_text("First Judicial District Court")
    expect(page.locator("dl.order")).to_contain_text("D-101-CR-2026-9")
    views = [v for v in _events(running, "viewed", f"console:{officer}")
             if v.field_path == f"/console/court-orders/{order_id}"]
    assert len(views) == 1 and views[0].participant_id == pid
