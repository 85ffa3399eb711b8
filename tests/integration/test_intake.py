"""The HTTP edge: authentication, validation and idempotency."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlmodel import select

from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.tables import Message
from hub.intake import stored_idempotency_key
from hub.partners import PartnerServer
from tests.harness import RunningHub, notice, wait_for
from tests.queues import depth


@pytest.fixture
def api_only(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    """The API without workers, so whatever it queues stays visible in the ingest queue."""
    with RunningHub(hub, partners, workers=False) as rh:
        yield rh


def _stored_messages(hub: Hub) -> int:
    with unit_of_work(hub.engine) as s:
        return len(s.exec(select(Message)).all())


def test_no_token_is_401(api_only: RunningHub) -> None:
    """A submission without a bearer token is refused with 401 and a WWW-Authenticate header."""
    r = api_only.http.post("/v1/agencies/sfpd/diversion-notices", json=notice())
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_forged_token_is_401(api_only: RunningHub) -> None:
    """A token not signed by the hub is refused."""
    r = api_only.post("sfpd", "diversion-notices", notice(), token="eyJhbGciOiJIUzI1NiJ9.e30.x")
    assert r.status_code == 401


def test_other_agencys_token_is_403(api_only: RunningHub) -> None:
    """The DA's token cannot submit as the police department, nor read its inbox."""
    r = api_only.post("sfpd", "diversion-notices", notice(), as_agency="da")
    assert r.status_code == 403
    assert "own agency" in r.json()["detail"] or "scope" in r.json()["detail"]
    da_with_write = api_only.token("da", {"diversion.write", "inbox.read"})
    r = api_only.post("sfpd", "diversion-notices", notice(), token=da_with_write)
    assert r.status_code == 403 and "own agency" in r.json()["detail"]
    r = api_only.http.get("/v1/agencies/sfpd/inbox",
                          headers={"Authorization": f"Bearer {da_with_write}"})
    assert r.status_code == 403
    assert depth(api_only.hub, "ingest") == 0


def test_missing_scope_is_403(api_only: RunningHub) -> None:
    """A police client without diversion.write cannot submit a notice."""
    token = api_only.token("sfpd", {"inbox.read"})
    r = api_only.post("sfpd", "diversion-notices", notice(), token=token)
    assert r.status_code == 403 and "diversion.write" in r.json()["detail"]


def test_wrong_secret_gets_no_token(api_only: RunningHub) -> None:
    """The token endpoint refuses a wrong client secret with invalid_client."""
    client_id, _ = api_only.client("sfpd")
    r = api_only.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_scope_beyond_grant_is_refused(api_only: RunningHub) -> None:
    """A client cannot obtain a scope it was not granted."""
    client_id, secret = api_only.client("sfpd")
    r = api_only.http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "scope": "audit.read"}, auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_agency_kind_cannot_submit_other_message_types(api_only: RunningHub) -> None:
    """A police agency cannot post a hold on charges even with the scope."""
    token = api_only.token("sfpd", {"hold.write"})
    r = api_only.post("sfpd", "charge-holds", {"case_ref": "x", "status": "held",
                                                "decided_at": "2026-01-01T00:00:00Z"}, token=token)
    assert r.status_code == 403


def test_malformed_notice_is_422_naming_every_problem_and_nothing_is_queued(
    api_only: RunningHub,
) -> None:
    """Every problem is listed with its JSON path; nothing is stored or queued."""
    bad = notice(pathway="arrested", referred_at="yesterday")
    bad["person"] = {"given_name": "", "date_of_birth": "1988-13-40"}
    bad["incident"]["charges"] = [{"statute": "30-31-23"}]
    bad["surprise"] = 1
    r = api_only.post("sfpd", "diversion-notices", bad)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    paths = {e["path"] for e in problem["errors"]}
    assert paths == {
        "$.pathway", "$.referred_at", "$.person.given_name", "$.person.family_name",
        "$.person.date_of_birth", "$.incident.charges[0].description", "$.surprise",
    }
    assert problem["status"] == 422 and "problem" in problem["detail"]
    assert "Traceback" not in r.text
    assert depth(api_only.hub, "ingest") == 0
    assert _stored_messages(api_only.hub) == 0


def test_body_that_is_not_json_is_422(api_only: RunningHub) -> None:
    """A body that is not JSON gets a problem at `$`, not a stack trace."""
    r = api_only.http.post("/v1/agencies/sfpd/diversion-notices", content=b"{not json",
                           headers={"Authorization": f"Bearer {api_only.token('sfpd')}",
                                    "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "$"
    assert depth(api_only.hub, "ingest") == 0


def test_hold_for_unknown_case_is_422(api_only: RunningHub) -> None:
    """A hold must name a diversion notice the hub knows."""
    r = api_only.post("da", "charge-holds", {"case_ref": "no-such-case", "status": "held",
                                              "decided_at": "2026-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"path": "$.case_ref", "message":
                                   "use the message id the hub returned for the diversion notice"}]


def test_accepted_means_queued(api_only: RunningHub) -> None:
    """A 202 comes with a message id, and the ingest job is already in RabbitMQ."""
    r = api_only.post("sfpd", "diversion-notices", notice())
    assert r.status_code == 202
    assert r.json()["message_id"]
    assert depth(api_only.hub, "ingest") == 1


def test_same_idempotency_key_twice_gives_one_message_and_one_delivery(running: RunningHub) -> None:
    """The same key and body twice returns the same id, and each partner receives it once."""
    body = notice()
    first = running.post("sfpd", "diversion-notices", body, key="rms-report-77")
    second = running.post("sfpd", "diversion-notices", body, key="rms-report-77")
    assert first.status_code == second.status_code == 202
    message_id = first.json()["message_id"]
    assert second.json() == {"message_id": message_id, "status": "accepted", "duplicate": True}
    wait_for("deliveries settled", lambda: running.settled(message_id, 2))
    other = running.submit("sfpd", "diversion-notices", notice(), key="rms-report-78")
    wait_for("a later message delivered", lambda: running.settled(other, 2))
    assert running.partners["provider"].message_ids() == [message_id, other]
    assert running.partners["da"].message_ids() == [message_id, other]
    assert sum(running.partners["provider"].state.attempts.values()) == 2


def test_same_key_with_other_body_is_refused(api_only: RunningHub) -> None:
    """Reusing an idempotency key for different content is a client error, not a silent merge."""
    assert api_only.post("sfpd", "diversion-notices", notice(), key="k1").status_code == 202
    r = api_only.post("sfpd", "diversion-notices", notice(referral_reason="other"), key="k1")
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "header:Idempotency-Key"
    assert depth(api_only.hub, "ingest") == 1


PHI_KEY = "Jane Doe 505-555-0100"


def _stored_keys(hub: Hub) -> list[str | None]:
    with unit_of_work(hub.engine) as s:
        return list(s.exec(select(Message.idempotency_key)).all())


def test_idempotency_key_is_stored_as_a_keyed_hash(running: RunningHub) -> None:
    """The database holds an HMAC of the client's key, and the key still de-duplicates."""
    body = notice()
    first = running.post("sfpd", "diversion-notices", body, key=PHI_KEY)
    assert first.status_code == 202, first.text
    message_id = first.json()["message_id"]
    [stored] = _stored_keys(running.hub)
    assert stored == stored_idempotency_key(running.hub.hasher, "santa-fe", "sfpd", PHI_KEY)
    assert stored.startswith("h1:") and len(stored) == 67
    assert not any(part in stored for part in ("Jane", "Doe", "505-555", "555-0100", " "))
    second = running.post("sfpd", "diversion-notices", body, key=PHI_KEY)
    assert second.json() == {"message_id": message_id, "status": "accepted", "duplicate": True}
    wait_for("deliveries settled", lambda: running.settled(message_id, 2))
    assert running.partners["provider"].message_ids() == [message_id]
    assert running.partners["da"].message_ids() == [message_id]
    assert _stored_messages(running.hub) == 1


def test_a_key_stored_raw_before_hashing_still_finds_its_message(api_only: RunningHub) -> None:
    """A row from before the upgrade holds the raw key; a retry with it gets the same id."""
    body = notice()
    message_id = api_only.submit("sfpd", "diversion-notices", body, key=PHI_KEY)
    with unit_of_work(api_only.hub.engine) as s:  # as the hub stored it before keys were hashed
        s.execute(update(Message).where(Message.id == message_id)  # type: ignore[arg-type]
                  .values(idempotency_key=PHI_KEY))
    again = api_only.post("sfpd", "diversion-notices", body, key=PHI_KEY)
    assert again.status_code == 202
    assert again.json() == {"message_id": message_id, "status": "accepted", "duplicate": True}
    other = api_only.post("sfpd", "diversion-notices", notice(referral_reason="x"), key=PHI_KEY)
    assert other.status_code == 422
    assert _stored_keys(api_only.hub) == [PHI_KEY]
