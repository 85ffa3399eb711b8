"""A diversion notice, a hold and a status update travel through the real hub."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from hub.partners import Received
from tests.harness import RunningHub, hold, notice, status, wait_for


def test_arrest_diversion_reaches_provider_as_fhir_and_da_as_notice(running: RunningHub) -> None:
    """An arrest diversion becomes a valid FHIR R4 Bundle at the provider and a notice at the DA."""
    message_id = running.submit("sfpd", "diversion-notices", notice())
    ehr, da = running.partners["provider"], running.partners["da"]
    wait_for("both deliveries", lambda: running.settled(message_id, 2))

    assert ehr.message_ids() == [message_id]
    bundle = ehr.state.accepted[0]
    assert bundle.headers["Content-Type"] == "application/fhir+json"
    parsed = Bundle.model_validate(bundle.document)
    kinds = sorted(e.resource.get_resource_type() for e in parsed.entry)
    assert kinds == ["Patient", "ServiceRequest", "Task"]
    patient = next(e.resource for e in parsed.entry if e.resource.get_resource_type() == "Patient")
    assert patient.name[0].family == "Testperson"
    assert str(patient.birthDate) == "1988-03-14"

    assert da.message_ids() == [message_id]
    envelope = da.state.accepted[0].document
    assert envelope["type"] == "diversion-notice"
    assert envelope["body"]["incident"]["charges"][0]["statute"] == "30-31-23"
    assert envelope["case_ref"] == message_id


def test_ledger_rows_exist_for_every_field_before_the_partner_sees_it(running: RunningHub) -> None:
    """When the partner receives a delivery, the ledger already holds a row for each field sent."""
    seen: dict[str, int] = {}

    def check_ledger(received: Received) -> None:
        did = received.headers["X-Hub-Delivery-Id"]
        seen[did] = running.hub.ledger.count_for_delivery(did)

    running.partners["provider"].state.on_receive = check_ledger
    running.partners["da"].state.on_receive = check_ledger
    body = notice()
    message_id = running.submit("sfpd", "diversion-notices", body)
    wait_for("both deliveries", lambda: running.settled(message_id, 2))

    for delivery in running.hub.store.deliveries_of(message_id):
        rows = running.hub.ledger.for_delivery(delivery.id)
        sent = [r for r in rows if r.decision == "disclosed"]
        assert seen[delivery.id] == len(rows) > 0
        fields = running.hub.catalogue.flatten(delivery.form, _form_body(body, delivery.form,
                                                                         message_id))
        assert {r.field_path for r in sent} == {f.path for f in fields}
        assert all(r.value_hmac == running.hub.hasher.of(f.value)
                   for r, f in zip(sorted(sent, key=lambda r: r.field_path),
                                   sorted(fields, key=lambda f: f.path), strict=True))
        assert all(len(r.value_hmac) == 64 and "Testperson" not in r.value_hmac for r in rows)


def _form_body(body: dict, form: str, case_ref: str) -> dict:  # type: ignore[type-arg]
    from hub.messages import MessageType
    from hub.steps.route import project

    return project(MessageType(form), MessageType.DIVERSION_NOTICE,
                   _canonical(body), case_ref, "Santa Fe Police Department")


def _canonical(body: dict) -> dict:  # type: ignore[type-arg]
    from hub.messages import DiversionNotice

    return DiversionNotice.model_validate(body).model_dump(mode="json", exclude_none=True)


def test_hold_goes_to_referring_police_inbox_and_provider(running: RunningHub) -> None:
    """A DA hold reaches the referring police agency's inbox and the provider's EHR."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("notice delivered", lambda: running.settled(case, 2))
    hold_id = running.submit("da", "charge-holds", hold(case))
    wait_for("hold delivered", lambda: running.settled(hold_id, 2))

    headers = {"Authorization": f"Bearer {running.token('sfpd')}"}
    items = running.http.get("/v1/agencies/sfpd/inbox", headers=headers).json()["items"]
    assert [i["message_id"] for i in items] == [hold_id]
    assert items[0]["payload"]["body"]["status"] == "held"
    assert running.http.post(f"/v1/agencies/sfpd/inbox/{items[0]['id']}/ack",
                             headers=headers).status_code == 204
    assert running.http.get("/v1/agencies/sfpd/inbox", headers=headers).json()["items"] == []

    ehr = running.partners["provider"]
    assert ehr.message_ids() == [case, hold_id]
    comm = Bundle.model_validate(ehr.state.accepted[1].document).entry[0].resource
    assert comm.get_resource_type() == "Communication"
    assert running.partners["da"].message_ids() == [case]  # the DA is not sent its own hold


def test_provider_status_is_withheld_from_justice_agencies_and_recorded(running: RunningHub) -> None:
    """Without a consent, provider status reaches neither the DA nor police; the ledger says why."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("notice delivered", lambda: running.settled(case, 2))
    status_id = running.submit("provider", "referral-status", status(case))
    wait_for("status settled", lambda: running.settled(status_id, 2))

    deliveries = running.hub.store.deliveries_of(status_id)
    assert {d.recipient: d.status for d in deliveries} == {"da": "withheld", "sfpd": "withheld"}
    assert status_id not in running.partners["da"].message_ids()
    rows = running.hub.ledger.for_message(status_id)
    assert rows and all(r.decision == "withheld" for r in rows)
    assert {r.field_path for r in rows if r.recipient == "da"} == {
        "case_ref", "status", "occurred_at", "plan_summary"}
    plan = next(r for r in rows if r.field_path == "plan_summary")
    assert "R5/R6" in plan.reason
    assert all("R1" in r.reason for r in rows if r.field_path == "status")
