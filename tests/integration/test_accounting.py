"""The accounting tells the whole truth: court orders named as such, bytes that may have
reached a partner counted with its answer, and every field of a summary listed."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import text

from consent.model import ConsentKind
from hub.bootstrap import bootstrap
from hub.db.engine import MIGRATIONS, make_engine
from hub.ledger_chain import CONTENT_V1, Chain, verify
from hub.settings import Settings
from tests.harness import RunningHub, status, wait_for
from tests.integration.test_consent_flow import _case, _fhir, cj_consent

NOW = datetime.now(UTC)


@pytest.fixture
def settings(database_url: str, services: Any) -> Settings:
    """Short push timeout and one retry, so a partner that hangs parks within seconds."""
    return Settings(database_url=database_url, amqp_url=services.amqp_url,
                    broker_prefix=f"test-{uuid.uuid4().hex[:10]}", retry_delays_ms=[100],
                    push_timeout_seconds=0.5, prefetch=32)


def _accounting(running: RunningHub, case: str, fmt: str = "json") -> Any:
    token = running.token("compliance", {"audit.read"})
    r = running.http.get("/v1/audit/accounting", params={"case": case, "format": fmt},
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.text if fmt == "csv" else r.json()


def _court_order(running: RunningHub, case: str) -> str:
    token = running.token("compliance", {"court-order.write"})
    order = {"case_ref": case, "court": "First Judicial District Court",
             "docket": "D-101-CR-2026-00417",
             "issued_at": (NOW - timedelta(minutes=1)).isoformat(),
             "valid_until": (NOW + timedelta(days=30)).isoformat(), "disclosers": ["provider"],
             "recipients": ["sfpd"], "purposes": ["LEAD-CJ-MONITORING"],
             "classes": ["referral", "engagement"],
             "order_document_url": "https://court.example/orders/417.pdf",
             "entered_by": "Compliance Officer Test"}
    r = running.http.post("/v1/court-orders", json=order,
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    assert r.json()["reference"].startswith("CourtOrder/")
    return str(r.json()["id"])


def _delivery(running: RunningHub, message_id: str, recipient: str) -> str:
    return next((d.status for d in running.hub.store.deliveries_of(message_id)
                 if d.recipient == recipient), "not yet routed")


def test_a_court_ordered_disclosure_is_named_a_court_order_in_every_form(
    running: RunningHub,
) -> None:
    """JSON, CSV and FHIR say "court order" with court, docket and reference; never a Consent."""
    case = _case(running)
    order_id = _court_order(running, case)
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("status settled", lambda: running.settled(message_id, 2))
    assert _delivery(running, message_id, "sfpd") == "delivered"

    data = _accounting(running, case)
    to_police = [d for d in data["disclosures"]
                 if d["recipient"]["id"] == "sfpd" and d["purpose"] == "LEAD-CJ-MONITORING"]
    assert len(to_police) == 1
    [basis] = to_police[0]["legal_basis"]
    assert basis["kind"] == "court-order"
    assert "court order" in basis["kind_text"]
    assert basis["court"] == "First Judicial District Court"
    assert basis["docket"] == "D-101-CR-2026-00417"
    assert basis["reference"] == f"CourtOrder/{order_id}/_history/1"
    assert basis["url"] == f"/v1/court-orders/{order_id}"

    rows = list(csv.DictReader(io.StringIO(_accounting(running, case, "csv"))))
    police_row = next(r for r in rows if r["purpose"] == "LEAD-CJ-MONITORING"
                      and r["kind"] == "disclosed" and "Police" in r["recipient"])
    assert "court order" in police_row["legal_basis"]
    assert "D-101-CR-2026-00417" in police_row["legal_basis"]
    assert "First Judicial District Court" in police_row["legal_basis"]
    assert f"CourtOrder/{order_id}/_history/1" in police_row["legal_basis"]
    assert "Consent/" not in police_row["legal_basis"]

    bundle = _accounting(running, case, "fhir")
    Bundle.model_validate(bundle)
    events = [e["resource"] for e in bundle["entry"]
              if e["resource"]["purposeOfEvent"][0]["coding"][0]["code"] == "LEAD-CJ-MONITORING"
              and e["resource"]["agent"][1]["who"]["identifier"]["value"] == "sfpd"
              and e["resource"]["outcome"] == "0"]
    assert len(events) == 1
    entities = events[0]["entity"]
    order_entities = [x for x in entities if x.get("type", {}).get("code") == "court-order"]
    assert len(order_entities) == 1
    assert order_entities[0]["what"]["identifier"] == {"system": "urn:lead-hub:court-order",
                                                       "value": order_id}
    assert "D-101-CR-2026-00417" in order_entities[0]["description"]
    assert not any(str(x.get("what", {}).get("reference", "")).startswith("Consent/")
                   for x in entities)

    # a court order is not a FHIR Consent: no Consent URL answers for it
    r = _fhir(running, "GET", f"/fhir/Consent/{order_id}")
    assert r.status_code == 404, r.text
    assert _fhir(running, "GET", f"/fhir/Consent/{order_id}/_history").status_code == 404
    # compliance reads it at its own address; the view is ledgered
    token = running.token("compliance", {"audit.read"})
    r = running.http.get(f"/v1/court-orders/{order_id}",
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "court-order" and r.json()["docket"] == "D-101-CR-2026-00417"
    viewed = [e for e in running.hub.ledger.for_message("-")
              if e.decision == "viewed" and e.field_path == f"court order {order_id}"]
    assert len(viewed) == 1
    provider = running.token("provider", {"audit.read"})
    r = running.http.get(f"/v1/court-orders/{order_id}",
                         headers={"Authorization": f"Bearer {provider}"})
    assert r.status_code == 403


def _consented_case(running: RunningHub) -> str:
    case = _case(running)
    consent = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None)
    r = _fhir(running, "POST", "/fhir/Consent", consent)
    assert r.status_code == 201, r.text
    return case


def test_a_delivery_the_partner_refused_after_receiving_it_is_a_disclosure(
    running: RunningHub,
) -> None:
    """The DA answered 400 and the status parked: the accounting lists it, marked refused."""
    case = _consented_case(running)
    running.partners["da"].state.fail_with = 400
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("parked", lambda: _delivery(running, message_id, "da") == "parked")

    data = _accounting(running, case)
    refused = [d for d in data["disclosures"]
               if d["recipient"]["id"] == "da" and d["purpose"] == "LEAD-CJ-MONITORING"]
    assert len(refused) == 1
    assert refused[0]["outcome"] == "refused"
    assert "refused" in refused[0]["outcome_text"]
    assert "HTTP 400" in refused[0]["answers"][0]["answer"]
    assert [f["path"] for f in refused[0]["fields"]] == ["case_ref", "status", "occurred_at"]
    rows = list(csv.DictReader(io.StringIO(_accounting(running, case, "csv"))))
    assert any(r["outcome"].startswith("refused") and r["purpose"] == "LEAD-CJ-MONITORING"
               for r in rows)
    events = [e["resource"] for e in _accounting(running, case, "fhir")["entry"]]
    assert any("refused" in e["outcomeDesc"] and e["outcome"] == "4" for e in events)


def test_an_attempt_that_timed_out_is_a_disclosure(running: RunningHub) -> None:
    """The DA hangs past the push timeout on every try: listed as sent, marked timed out."""
    case = _consented_case(running)
    running.partners["da"].state.on_receive = lambda _received: time.sleep(1.5)
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("parked", lambda: _delivery(running, message_id, "da") == "parked", timeout=30)

    data = _accounting(running, case)
    timed_out = [d for d in data["disclosures"]
                 if d["recipient"]["id"] == "da" and d["purpose"] == "LEAD-CJ-MONITORING"]
    assert len(timed_out) == 1 and timed_out[0]["outcome"] == "timed-out"
    assert "may have" in timed_out[0]["outcome_text"]
    assert timed_out[0]["deliveries"] == [d.id for d in running.hub.store.deliveries_of(
        message_id) if d.recipient == "da"]


def test_an_endpoint_that_cannot_be_reached_has_disclosed_nothing(running: RunningHub) -> None:
    """Connection refused: nothing left the hub, so the accounting lists no disclosure."""
    case = _consented_case(running)
    running.partners["da"].stop()  # the port is closed: the connection is refused
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("parked", lambda: _delivery(running, message_id, "da") == "parked", timeout=30)
    data = _accounting(running, case)
    assert not [d for d in data["disclosures"]
                if d["recipient"]["id"] == "da" and d["purpose"] == "LEAD-CJ-MONITORING"]
    failures = [e for e in running.hub.ledger.for_message(message_id)
                if e.decision == "attempt-failed"]
    assert failures and all(e.field_path == "not-sent" for e in failures)


def test_a_summary_lists_every_field_disclosed_in_the_period(running: RunningHub) -> None:
    """Two statuses to the DA, the second with an exit reason: JSON and CSV list it."""
    case = _consented_case(running)
    first = running.submit("provider", "referral-status", status(case))
    wait_for("first settled", lambda: running.settled(first, 2))
    second = running.submit("provider", "referral-status",
                            status(case, status="exited", exit_reason="completed the program"))
    wait_for("second settled", lambda: running.settled(second, 2))

    data = _accounting(running, case)
    [group] = [d for d in data["disclosures"]
               if d["recipient"]["id"] == "da" and d["purpose"] == "LEAD-CJ-MONITORING"]
    assert group["count"] == 2
    assert [f["path"] for f in group["fields"]] == ["case_ref", "status", "occurred_at",
                                                    "exit_reason"]
    assert "4 field(s)" in group["description"]
    rows = list(csv.DictReader(io.StringIO(_accounting(running, case, "csv"))))
    [row] = [r for r in rows if r["purpose"] == "LEAD-CJ-MONITORING"
             and r["kind"] == "disclosed" and "District Attorney" in r["recipient"]]
    assert "exit_reason" in row["fields"].split("; ")
    assert row["count"] == "2"


# the migration ------------------------------------------------------------------------------
def _migrate(engine: Any, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


V1_ROWS = [  # (legal_basis, decision): what ledgers written before the kind was kept hold
    ("Consent/{order}/_history/1", "disclosed"),
    ("Consent/{consent}/_history/2", "disclosed"),
    ("LEAD interagency agreement (not a Part 2 record)", "disclosed"),
    ("none (42 CFR 2.13, 2.31)", "withheld"),
    ("-", "viewed"),
]


@pytest.fixture
def old_settings(blank_database_url: str, services: Any) -> Settings:
    return Settings(database_url=blank_database_url, amqp_url=services.amqp_url,
                    broker_prefix=f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def old_ledger(old_settings: Settings) -> Iterator[tuple[Any, str, str]]:
    """A database at the schema before basis kinds, with a chain of five version-1 links."""
    settings = old_settings
    engine = make_engine(settings.database_url)
    _migrate(engine, "0004")
    chain = Chain(settings.ledger_key)
    order, consent = str(uuid.uuid4()), str(uuid.uuid4())
    prev = "0" * 64
    with engine.begin() as conn:
        for cid, kind in ((order, "court-order"), (consent, "general")):
            conn.execute(text(
                "INSERT INTO consent_version (consent_id, version, site, participant_id, kind, "
                "status, terms, resource, recorded_at, recorded_by) VALUES (:c, 1, 'santa-fe', "
                "'p-1', :k, 'active', '{}', :r, :t, 'test')"),
                {"c": cid, "k": kind, "r": b"sealed", "t": NOW})
        for seq, (basis, decision) in enumerate(V1_ROWS, start=1):
            values = dict(seq=seq, recorded_at=NOW, site="santa-fe", message_id="m-1",
                          delivery_id="d-1", attempt=1, participant_id="p-1",
                          discloser="provider", recipient="da", purpose="TREAT",
                          message_type="referral-status", field_path=f"f{seq}",
                          data_class="engagement", value_hmac="ab" * 32, decision=decision,
                          reason="test", legal_basis=basis.format(order=order, consent=consent),
                          mapping_version="canonical-v1", notice=None)
            link = chain.link_values(prev, [values[c] for c in CONTENT_V1])
            conn.execute(text(
                f"INSERT INTO ledger_entry ({', '.join(CONTENT_V1)}, prev_hash, entry_hash) "
                f"VALUES ({', '.join(':' + c for c in CONTENT_V1)}, :prev, :link)"),
                {**values, "prev": prev, "link": link})
            prev = link
        conn.execute(text("UPDATE ledger_head SET seq = :s, entry_hash = :h WHERE id = 1"),
                     {"s": len(V1_ROWS), "h": prev})
    yield engine, order, consent
    engine.dispose()


def test_the_migration_back_fills_basis_kinds_and_the_chain_still_verifies(
    old_settings: Settings, old_ledger: tuple[Any, str, str],
) -> None:
    """Old rows get their kind from what they record; old and new links both verify."""
    engine, _order, _consent = old_ledger
    hub = bootstrap(old_settings, declare=False)  # migrates to the newest schema
    try:
        with engine.connect() as conn:
            kinds = [r[0] for r in conn.execute(text(
                "SELECT basis_kind FROM ledger_entry ORDER BY seq"))]
        assert kinds == ["court-order", "consent", "lead-agreement", "none", None]
        verdict = verify(hub.engine, hub.chain, hub.signer.public_hex)
        assert verdict.ok and verdict.entries == 5, verdict.problem
        from hub import ledger_events

        ledger_events.record(hub.engine, hub.chain, site="santa-fe", kind="viewed",
                             actor="test", subject="after the migration", reason="test")
        verdict = verify(hub.engine, hub.chain, hub.signer.public_hex)
        assert verdict.ok and verdict.entries == 6, verdict.problem
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE ledger_entry SET basis_kind = 'none' WHERE seq = 1"))
    finally:
        hub.close()
