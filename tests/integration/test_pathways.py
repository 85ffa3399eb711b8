"""Diversion pathways decide who hears about a person; senders can see where their message went."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.tables import Message
from hub.partners import PartnerServer
from tests.harness import RunningHub, notice, wait_for
from tests.queues import depth


@pytest.fixture
def api_only(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    """The API without workers, so whatever it queues stays visible in the ingest queue."""
    with RunningHub(hub, partners, workers=False) as rh:
        yield rh


def _without_incident(pathway: str) -> dict[str, Any]:
    body = notice(pathway=pathway)
    del body["incident"]
    return body


def _stored_messages(hub: Hub) -> int:
    with unit_of_work(hub.engine) as s:
        return len(s.exec(select(Message)).all())


def _reaches_only_provider(running: RunningHub, agency: str, body: dict[str, Any]) -> None:
    message_id = running.submit(agency, "diversion-notices", body)
    wait_for("the provider delivery", lambda: running.settled(message_id, 1))
    deliveries = running.hub.store.deliveries_of(message_id)
    assert {d.recipient: (d.status, d.form) for d in deliveries} == {
        "provider": ("delivered", "referral")}
    assert running.partners["provider"].message_ids() == [message_id]
    assert running.partners["da"].message_ids() == []
    assert running.partners["da"].state.attempts == {}


def test_community_referral_from_outreach_reaches_only_the_provider(running: RunningHub) -> None:
    """An outreach agency's community referral goes to the provider and never to the DA."""
    _reaches_only_provider(running, "outreach", _without_incident("community-referral"))


def test_social_contact_referral_from_police_reaches_only_the_provider(running: RunningHub) -> None:
    """A police social-contact referral goes to the provider and never to the DA."""
    _reaches_only_provider(running, "sfpd", _without_incident("social-contact-referral"))


def test_outreach_cannot_send_an_arrest_diversion(api_only: RunningHub) -> None:
    """A community agency posting an arrest diversion gets 422 at $.pathway; nothing is queued."""
    r = api_only.post("outreach", "diversion-notices", notice(pathway="arrest-diversion"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["path"] for e in r.json()["errors"]] == ["$.pathway"]
    assert depth(api_only.hub, "ingest") == 0
    assert _stored_messages(api_only.hub) == 0


def test_arrest_diversion_without_incident_is_422(api_only: RunningHub) -> None:
    """An arrest diversion must carry the incident: 422 at $.incident, nothing queued."""
    r = api_only.post("sfpd", "diversion-notices", _without_incident("arrest-diversion"))
    assert r.status_code == 422, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["$.incident"]
    assert depth(api_only.hub, "ingest") == 0
    assert _stored_messages(api_only.hub) == 0


def test_sender_sees_where_its_message_went_without_phi(running: RunningHub) -> None:
    """The sender reads recipients, statuses and attempts (no PHI); others get 403, unknown ids 404."""
    body = notice()
    message_id = running.submit("sfpd", "diversion-notices", body)
    wait_for("both deliveries", lambda: running.settled(message_id, 2))

    own = {"Authorization": f"Bearer {running.token('sfpd')}"}
    r = running.http.get(f"/v1/agencies/sfpd/messages/{message_id}", headers=own)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["message_id"] == message_id and seen["type"] == "diversion-notice"
    assert sorted(seen["deliveries"], key=lambda d: d["recipient"]) == [
        {"recipient": "da", "status": "delivered", "attempts": 1},
        {"recipient": "provider", "status": "delivered", "attempts": 1},
    ]
    person = body["person"]
    for phi in (person["family_name"], person["given_name"], person["date_of_birth"],
                person["state_id"], body["contact"]["phone"], body["incident"]["report_number"]):
        assert phi not in r.text, phi

    da = {"Authorization": f"Bearer {running.token('da')}"}
    forbidden = running.http.get(f"/v1/agencies/sfpd/messages/{message_id}", headers=da)
    assert forbidden.status_code == 403, forbidden.text
    assert person["family_name"] not in forbidden.text
    not_theirs = running.http.get(f"/v1/agencies/da/messages/{message_id}", headers=da)
    assert not_theirs.status_code == 404, not_theirs.text
    unknown = running.http.get("/v1/agencies/sfpd/messages/no-such-message", headers=own)
    assert unknown.status_code == 404, unknown.text
    anonymous = running.http.get(f"/v1/agencies/sfpd/messages/{message_id}")
    assert anonymous.status_code == 401
